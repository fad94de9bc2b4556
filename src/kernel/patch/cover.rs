//! Which changed lines and functions a set of KCOV PCs reaches.
