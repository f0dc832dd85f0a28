//! Integration tests of ingest: the bad-input corpus, the public KCS declarations and the
//! inspection outcomes feed.

mod corpus;
mod dictionary;
mod fuzz;
mod kcs;
mod outcomes;
mod parquet_types;
mod reader;
mod rules;
mod typed;
