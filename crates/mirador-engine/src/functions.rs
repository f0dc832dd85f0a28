//! Mirador's per-row logic as DataFusion functions.
//!
//! A plan that calls one is planned by the client and the scheduler and run by the executors:
//! each of them finds the function by name, so each registers the same set ([`session_state`] for
//! the client and the scheduler, [`registry`] for the executors). Every function calls the code
//! the local pipeline calls, so that a row gets the same value on either engine.

use std::sync::Arc;

use ballista_core::registry::BallistaFunctionRegistry;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::execution::FunctionRegistry;
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use datafusion::prelude::SessionConfig;

/// `mirador_hs_chapter(hs)`: the HS chapter of a normalised HS code, as Mirador derives it
/// ([`mirador_schema::hs::chapter`]: its first two digits); null for null.
pub const HS_CHAPTER: &str = "mirador_hs_chapter";

/// `mirador_gap_year(period)`: the year a reported period (`YYYY-MM` or `YYYY`) falls in, the
/// `revenue_gap` stage's yearly cells' period ([`mirador_gap::PeriodGrain::Year`]); null for
/// null.
pub const GAP_YEAR: &str = "mirador_gap_year";

/// Mirador's scalar functions.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let text_to_text = |name: &str, f: fn(&str) -> &str| {
        Arc::new(create_udf(
            name,
            vec![DataType::Utf8],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(move |args: &[ColumnarValue]| each_text(args, f)),
        ))
    };
    vec![text_to_text(HS_CHAPTER, mirador_schema::hs::chapter), text_to_text(GAP_YEAR, |p| mirador_gap::PeriodGrain::Year.of(p))]
}

/// `f` applied to every value of a text argument.
fn each_text(args: &[ColumnarValue], f: fn(&str) -> &str) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let text: ArrayRef = cast(&arrays[0], &DataType::Utf8)?;
    let out: StringArray = text.as_string::<i32>().iter().map(|v| v.map(f)).collect();
    let out: ArrayRef = Arc::new(out);
    // A scalar argument gives a scalar.
    Ok(match &args[0] {
        ColumnarValue::Scalar(_) if out.len() == 1 => ColumnarValue::Scalar(datafusion::scalar::ScalarValue::try_from_array(&out, 0)?),
        _ => ColumnarValue::Array(out),
    })
}

/// The functions an executor finds plans' calls in: DataFusion's and Ballista's defaults, and
/// Mirador's.
pub fn registry() -> BallistaFunctionRegistry {
    let mut registry = BallistaFunctionRegistry::default();
    for f in scalar_functions() {
        registry.scalar_functions.insert(f.name().to_owned(), f);
    }
    registry
}

/// A session with Ballista's defaults and Mirador's functions: the client's (with a Ballista
/// configuration, or a plain one for a session in this process) and the scheduler's.
pub fn session_state(config: SessionConfig) -> Result<SessionState> {
    let mut state = ballista_core::utils::default_session_builder(config)?;
    for f in scalar_functions() {
        state.register_udf(f)?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;

    use crate::Engine;

    #[test]
    fn the_chapter_is_the_one_the_pipeline_derives() {
        let engine = Engine::local().unwrap();
        let out = engine.sql("SELECT mirador_hs_chapter(x) AS c FROM (VALUES ('870323'), ('0901'), ('7'), (NULL)) AS t(x)").unwrap();
        let c: Vec<Option<String>> =
            out.iter().flat_map(|b| b.column(0).as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect::<Vec<_>>()).collect();
        let expected = ["870323", "0901", "7"].map(|code| Some(mirador_schema::hs::chapter(code).to_owned()));
        assert_eq!(c, [expected[0].clone(), expected[1].clone(), expected[2].clone(), None]);
        assert_eq!(c[0].as_deref(), Some("87"));
    }
}
