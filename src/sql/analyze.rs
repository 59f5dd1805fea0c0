//! SQL analysis (owned by the analysis work stream).
