//! Integration tests of `mirador-report`: render into a temporary directory and inspect files.

mod challengers;
mod layout;
mod render;
