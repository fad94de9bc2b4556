//! The type model the descriptions compile to: what every argument of every call is.

use serde::Serialize;

pub type ResourceId = usize;
pub type StructId = usize;
pub type SyscallId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Dir {
    In,
    Out,
    InOut,
}

impl Dir {
    pub fn reads(self) -> bool {
        self != Dir::Out
    }
    pub fn writes(self) -> bool {
        self != Dir::In
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDesc {
    pub name: String,
    /// The resource and its ancestors, root first: `[fd, sock, sock_unix]`.
    pub kinds: Vec<String>,
    /// Size of the underlying integer in bytes.
    pub size: u8,
    /// Values that are always acceptable (e.g. -1, AT_FDCWD).
    pub special: Vec<u64>,
}

impl ResourceDesc {
    /// A value produced as `produced` can be used where `self` is wanted.
    pub fn accepts(&self, produced: &ResourceDesc) -> bool {
        produced.kinds.len() >= self.kinds.len()
            && produced.kinds[..self.kinds.len()] == self.kinds[..]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum LenUnit {
    /// `len`: elements for arrays, bytes otherwise.
    Elems,
    /// `bytesize` (1), `bytesize4` (4), …
    Bytes(u64),
    Bits,
    /// `offsetof[field]`: the byte offset of a sibling field in the enclosing struct.
    Offset,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum BufferKind {
    Blob {
        range: Option<(u64, u64)>,
    },
    String {
        values: Vec<Vec<u8>>,
        noz: bool,
    },
    Filename {
        noz: bool,
    },
    /// `compressed_image`: a zlib-compressed filesystem image, inflated by the executor; in
    /// program text `"$<base64>"`.
    Compressed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ArrayLen {
    Var,
    Range(u64, u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TypeKind {
    Int {
        size: u8,
        range: Option<(u64, u64)>,
        align: u64,
        be: bool,
    },
    Const {
        size: u8,
        val: u64,
        be: bool,
        /// The constant's name when the description gave one (`IPC_RMID`), for C output.
        name: Option<String>,
    },
    Flags {
        size: u8,
        vals: Vec<u64>,
        bitmask: bool,
        /// The named values of the flag set, for C output.
        names: Vec<(String, u64)>,
    },
    Len {
        size: u8,
        path: Vec<String>,
        unit: LenUnit,
    },
    Proc {
        size: u8,
        start: u64,
        per_proc: u64,
    },
    Resource(ResourceId),
    Ptr {
        dir: Dir,
        elem: Box<Type>,
    },
    Vma {
        pages: Option<(u64, u64)>,
    },
    Buffer {
        dir: Dir,
        kind: BufferKind,
    },
    Array {
        elem: Box<Type>,
        len: ArrayLen,
    },
    Struct(StructId),
    Void,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Type {
    pub kind: TypeKind,
    pub opt: bool,
    /// `int16:3` in a struct: where the value sits in the integer unit it shares with its
    /// neighbours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitfield: Option<Bitfield>,
}

/// A bitfield: `len` bits at bit `offset` of an integer unit of the type's size. Consecutive
/// bitfields of a struct share units; only the last of a unit takes up its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bitfield {
    pub offset: u8,
    pub len: u8,
    pub last: bool,
}

impl Type {
    pub fn new(kind: TypeKind) -> Type {
        Type {
            kind,
            opt: false,
            bitfield: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldDesc {
    pub name: String,
    pub ty: Type,
    /// `(in)`/`(out)`/`(inout)` on a struct field; None: the enclosing direction.
    pub dir: Option<Dir>,
    /// `(if[...])` on a union option: it may be chosen only while this holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cond: Option<Cond>,
}

/// A condition over the values of other fields: `value[flags] & F != 0`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Cond {
    Const(u64),
    /// `value[a:b]`: a path as `len` takes (`parent`, a struct's name, `syscall`, fields).
    Value(Vec<String>),
    Binary(crate::ast::BinOp, Box<Cond>, Box<Cond>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StructDesc {
    pub name: String,
    pub is_union: bool,
    pub fields: Vec<FieldDesc>,
    pub packed: bool,
    pub align: Option<u64>,
    /// `size[N]`: the struct is padded to exactly N bytes.
    pub size: Option<u64>,
    /// A union whose size is the chosen option's (`varlen`).
    pub varlen: bool,
    /// The union standing for a conditional struct field (`f T (if[c])`): options `value`
    /// (while `c` holds) and `void`; its conditions read the enclosing struct.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub conditional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Syscall {
    pub id: SyscallId,
    /// `fcntl$dupfd`
    pub name: String,
    /// `fcntl`
    pub call_name: String,
    pub nr: u64,
    pub args: Vec<FieldDesc>,
    pub ret: Option<ResourceId>,
    /// `timeout[N]` in ms, if given.
    pub timeout_ms: Option<u64>,
    /// `no_generate`: programs may contain the call (read from text) but generation never
    /// picks it.
    pub no_generate: bool,
    /// Where it is declared (`ipc.txt:53:1`).
    pub pos: String,
}

/// Interesting integers to draw from.
pub const SPECIAL_INTS: &[u64] = &[
    0,
    1,
    2,
    3,
    4,
    7,
    8,
    16,
    31,
    32,
    63,
    64,
    127,
    128,
    255,
    256,
    511,
    512,
    1023,
    1024,
    4095,
    4096,
    4097,
    0x7fff,
    0x8000,
    0xffff,
    0x10000,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    0x100000000,
    0x7fffffffffffffff,
    0x8000000000000000,
    0xffffffffffffffff,
];

/// The size in bytes of a fixed-size integer-like kind.
pub fn int_size(kind: &TypeKind, resources: &[ResourceDesc]) -> Option<u8> {
    Some(match kind {
        TypeKind::Int { size, .. }
        | TypeKind::Const { size, .. }
        | TypeKind::Flags { size, .. }
        | TypeKind::Len { size, .. }
        | TypeKind::Proc { size, .. } => *size,
        TypeKind::Resource(r) => resources[*r].size,
        TypeKind::Ptr { .. } | TypeKind::Vma { .. } => 8,
        _ => return None,
    })
}
