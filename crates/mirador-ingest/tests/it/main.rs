//! Integration tests of ingest: the bad-input corpus and the public KCS declarations.

mod corpus;
mod fuzz;
mod kcs;
mod typed;
