//! The revenue-gap stage measured against a synthetic world with known gaps, and run on real
//! UN Comtrade flows.

mod comtrade;
mod params;
mod synthetic;
