//! End-to-end tests of the `mirador` binary: the nightly pipeline on the bundled sample data, the
//! KCS pipeline, and the command-line contract (exit codes, messages).

mod auditees;
mod backfill;
mod backtest;
mod carried;
mod cli;
mod cluster;
mod crash;
mod export;
mod ingest_rules;
mod kcs;
mod nightly;
mod reliability;
