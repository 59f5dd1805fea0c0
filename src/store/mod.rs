//! The workspace store (owned by the store work stream).
