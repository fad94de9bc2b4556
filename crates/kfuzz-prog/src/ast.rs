//! The syntax tree of syzlang description files, with source positions. Produced by
//! `parser`, consumed by `target`; no meaning is given to names here.

/// `file:line:col` of a token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A type expression: `int32`, `ptr[in, foo]`, `int32[0:10, 4]`, `len[parent:field]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeExpr {
    pub name: String,
    pub args: Vec<TypeArg>,
    pub pos: Pos,
}

/// One argument inside `[...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeArg {
    Type(TypeExpr),
    Int(i128, Pos),
    Str(String, Pos),
    /// `a:b` — an int range, or a `len` path (`parent:field`).
    Colon(Box<TypeArg>, Box<TypeArg>),
    /// `a & B`, `value[f] == 1`, `x || y`: an integer expression (consts, conditions).
    Binary(BinOp, Box<TypeArg>, Box<TypeArg>),
}

/// The operators of syzlang expressions, loosest first: `||`, then `==`/`!=`, then `&`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum BinOp {
    Or,
    Eq,
    Ne,
    And,
}

impl BinOp {
    pub fn apply(self, a: u64, b: u64) -> u64 {
        match self {
            BinOp::Or => u64::from(a != 0 || b != 0),
            BinOp::Eq => u64::from(a == b),
            BinOp::Ne => u64::from(a != b),
            BinOp::And => a & b,
        }
    }
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::And => "&",
        }
    }
}

impl TypeArg {
    pub fn pos(&self) -> &Pos {
        match self {
            TypeArg::Type(t) => &t.pos,
            TypeArg::Int(_, p) | TypeArg::Str(_, p) => p,
            TypeArg::Colon(a, _) | TypeArg::Binary(_, a, _) => a.pos(),
        }
    }
}

/// A value in a flag set or a resource's special values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i128),
    /// A constant name, resolved from the tree.
    Ident(String),
    Str(String),
}

/// A struct field or call argument: `name type (attrs)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: TypeExpr,
    /// `int64:3`: a bitfield of that many bits.
    pub bits: Option<TypeArg>,
    pub attrs: Vec<TypeExpr>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StructDef {
    pub name: String,
    pub is_union: bool,
    pub fields: Vec<Field>,
    pub attrs: Vec<TypeExpr>,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeDefBody {
    Type(TypeExpr),
    Struct(StructDef),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Include {
        path: String,
        pos: Pos,
    },
    /// `meta noextract`, `meta arches["amd64"]`, `meta automatic`.
    Meta {
        what: TypeExpr,
        pos: Pos,
    },
    Incdir {
        path: String,
        pos: Pos,
    },
    Define {
        name: String,
        value: String,
        pos: Pos,
    },
    Resource {
        name: String,
        base: TypeExpr,
        values: Vec<(Value, Pos)>,
        pos: Pos,
    },
    Flags {
        name: String,
        values: Vec<(Value, Pos)>,
        pos: Pos,
    },
    TypeDef {
        name: String,
        params: Vec<String>,
        body: TypeDefBody,
        pos: Pos,
    },
    Struct(StructDef),
    Call {
        name: String,
        args: Vec<Field>,
        ret: Option<TypeExpr>,
        attrs: Vec<TypeExpr>,
        pos: Pos,
    },
}

impl Node {
    pub fn pos(&self) -> &Pos {
        match self {
            Node::Include { pos, .. }
            | Node::Meta { pos, .. }
            | Node::Incdir { pos, .. }
            | Node::Define { pos, .. }
            | Node::Resource { pos, .. }
            | Node::Flags { pos, .. }
            | Node::TypeDef { pos, .. }
            | Node::Call { pos, .. } => pos,
            Node::Struct(s) => &s.pos,
        }
    }
}
