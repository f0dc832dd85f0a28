//! The fraud model on the public KCS declarations (the bar set against the Python stack) and on
//! a synthetic world.

mod backtest;
mod carry;
mod kcs;
mod outcomes;
mod synthetic;
