//! The two faces of lode over `lode-core`: the command line (`cli`) and the terminal UI
//! (`tui`). Neither knows how a stage works inside; both call `lode_core::tasks`.

pub mod cli;
pub mod tui;
