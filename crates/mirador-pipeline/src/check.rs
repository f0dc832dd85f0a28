//! Load-time checks of a pipeline against the stages' declared contracts: every input is
//! produced by exactly one stage, no cycles, the file's wiring matches what each stage declares,
//! sources exist. `mirador check` runs these without running anything.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::Schema;

use crate::checks::checked_columns;
use crate::error::ConfigError;
use crate::pipeline::PipelineFile;
use crate::stage::Stage;

/// Looks a stage up by name (the registry lives in `mirador-cli`).
pub type Registry = dyn Fn(&str) -> Option<Box<dyn Stage>> + Sync;

/// A checked pipeline: stages in an order that respects their data dependencies, grouped in
/// levels whose members do not depend on each other and may run in parallel.
pub struct Plan {
    /// Stages by level.
    pub levels: Vec<Vec<PlannedStage>>,
    /// Dataset → producing stage.
    pub producers: BTreeMap<String, String>,
}

/// One stage of a plan.
pub struct PlannedStage {
    /// The stage implementation.
    pub stage: Box<dyn Stage>,
    /// Index of its spec in the pipeline file.
    pub spec_index: usize,
    /// Datasets it reads (required, plus the optional ones the pipeline produces).
    pub inputs: Vec<String>,
}

impl Plan {
    /// Names of all stages, in run order.
    pub fn stage_names(&self) -> Vec<&'static str> {
        self.levels.iter().flatten().map(|s| s.stage.name()).collect()
    }
}

fn set(items: &[String]) -> BTreeSet<&str> {
    items.iter().map(String::as_str).collect()
}

/// Checks `file` against the stages of `registry` and orders them.
pub fn plan(file: &PipelineFile, registry: &Registry) -> Result<Plan, ConfigError> {
    let mut stages = Vec::new();
    let mut producers: BTreeMap<String, String> = BTreeMap::new();
    let mut seen_names = BTreeSet::new();
    for (i, spec) in file.stages.iter().enumerate() {
        let stage = registry(&spec.name).ok_or_else(|| ConfigError::UnknownStage(spec.name.clone()))?;
        if !seen_names.insert(spec.name.clone()) {
            return Err(ConfigError::Contract { stage: spec.name.clone(), message: "listed twice".into() });
        }
        let declared_out: BTreeSet<&str> = stage.outputs().iter().copied().collect();
        if set(&spec.outputs) != declared_out {
            return Err(ConfigError::Contract {
                stage: spec.name.clone(),
                message: format!("outputs {:?} in the pipeline file, but the stage writes {:?}", spec.outputs, declared_out),
            });
        }
        for out in &spec.outputs {
            if let Some(first) = producers.insert(out.clone(), spec.name.clone()) {
                return Err(ConfigError::TwoWriters { dataset: out.clone(), first, second: spec.name.clone() });
            }
        }
        let known_sources: BTreeSet<&str> = stage.sources().iter().copied().collect();
        for source in &spec.sources {
            if !known_sources.contains(source.as_str()) {
                return Err(ConfigError::Contract {
                    stage: spec.name.clone(),
                    message: format!("does not read source `{source}` (it reads {known_sources:?})"),
                });
            }
            if !file.sources.contains_key(source) {
                return Err(ConfigError::Contract {
                    stage: spec.name.clone(),
                    message: format!("source `{source}` is not declared under [sources]"),
                });
            }
        }
        stages.push((i, stage));
    }
    // Inputs: required ones must be listed; listed ones must be required or optional.
    let mut planned = Vec::new();
    for (i, stage) in stages {
        let spec = &file.stages[i];
        let listed = set(&spec.inputs);
        for req in stage.inputs() {
            if !listed.contains(req) {
                return Err(ConfigError::Contract {
                    stage: spec.name.clone(),
                    message: format!("needs input `{req}`, which the pipeline file does not list"),
                });
            }
        }
        for input in &listed {
            let known = stage.inputs().contains(input) || stage.optional_inputs().contains(input);
            if !known {
                return Err(ConfigError::Contract {
                    stage: spec.name.clone(),
                    message: format!("lists input `{input}`, which the stage does not read"),
                });
            }
            if !producers.contains_key(*input) {
                return Err(ConfigError::Unproduced { stage: spec.name.clone(), dataset: (*input).to_owned() });
            }
        }
        planned.push(PlannedStage { stage, spec_index: i, inputs: spec.inputs.clone() });
    }
    let levels = levels(planned, &producers)?;
    Ok(Plan { levels, producers })
}

/// Checks the columns the pipeline reads against the columns their producers declare
/// ([`Stage::output_schema`]): every column a stage names in [`Stage::input_columns`], and every
/// column a `[checks.<id>]` block tests (relationship targets included). Fails on the first
/// column no producer writes, naming the stage or check, the dataset and the column.
pub fn check_columns(file: &PipelineFile, plan: &Plan) -> Result<(), ConfigError> {
    let stages: BTreeMap<&str, &dyn Stage> = plan.levels.iter().flatten().map(|s| (s.stage.name(), s.stage.as_ref())).collect();
    let declared = |dataset: &str| -> Option<Result<(String, Schema), ConfigError>> {
        let producer = plan.producers.get(dataset)?;
        let stage = stages.get(producer.as_str())?;
        Some(match stage.output_schema(dataset) {
            Some(mut schema) => {
                // Optional columns may be read or checked too: they are there when the sources have them.
                schema.merge(stage.optional_output_columns(dataset));
                Ok((producer.clone(), schema))
            }
            None => Err(ConfigError::Contract {
                stage: producer.clone(),
                message: format!("writes `{dataset}` without a declared schema (add it to the catalog, mirador_schema::catalog)"),
            }),
        })
    };
    let missing = |who: &str, dataset: &str, column: &str, producer: &str, schema: &Schema| ConfigError::Contract {
        stage: who.to_owned(),
        message: format!(
            "reads column `{column}` of `{dataset}`, which `{producer}` does not write (it writes: {})",
            schema.iter_names().map(|n| n.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    for planned in plan.levels.iter().flatten() {
        for dataset in &planned.inputs {
            let Some(columns) = planned.stage.input_columns(dataset) else { continue };
            let Some(found) = declared(dataset) else { continue };
            let (producer, schema) = found?;
            if let Some(column) = columns.iter().find(|c| !schema.contains(c)) {
                return Err(missing(planned.stage.name(), dataset, column, &producer, &schema));
            }
        }
    }
    for (dataset, checks) in &file.checks {
        let who = format!("checks.{dataset}");
        let targets = checks.relationships.values().filter_map(|t| t.split_once('.'));
        for (target, column) in checked_columns(checks).into_iter().map(|c| (dataset.as_str(), c)).chain(targets) {
            let Some(found) = declared(target) else { continue };
            let (producer, schema) = found?;
            if !schema.contains(column) {
                return Err(missing(&who, target, column, &producer, &schema));
            }
        }
    }
    Ok(())
}

/// Kahn's algorithm, level by level.
fn levels(mut pending: Vec<PlannedStage>, producers: &BTreeMap<String, String>) -> Result<Vec<Vec<PlannedStage>>, ConfigError> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut levels = Vec::new();
    while !pending.is_empty() {
        let (ready, rest): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|s| s.inputs.iter().all(|input| producers.get(input).is_some_and(|p| done.contains(p))));
        if ready.is_empty() {
            let stuck = rest.first().map(|s| s.stage.name().to_owned()).unwrap_or_default();
            return Err(ConfigError::Cycle(stuck));
        }
        for s in &ready {
            done.insert(s.stage.name().to_owned());
        }
        levels.push(ready);
        pending = rest;
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StageError;
    use crate::stage::{StageContext, StageOutput};

    struct Fake(&'static str, &'static [&'static str], &'static [&'static str]);
    impl Stage for Fake {
        fn name(&self) -> &'static str {
            self.0
        }
        fn inputs(&self) -> &'static [&'static str] {
            self.1
        }
        fn outputs(&self) -> &'static [&'static str] {
            self.2
        }
        fn run(&self, _: &StageContext) -> Result<StageOutput, StageError> {
            Ok(StageOutput::new())
        }
    }

    /// Reads column `wanted` of `x`, whose producer `a` declares `id` and `v`.
    struct Reads(&'static str);
    impl Stage for Reads {
        fn name(&self) -> &'static str {
            "reads"
        }
        fn inputs(&self) -> &'static [&'static str] {
            &["x"]
        }
        fn input_columns(&self, _: &str) -> Option<Vec<&'static str>> {
            Some(vec!["id", self.0])
        }
        fn outputs(&self) -> &'static [&'static str] {
            &[]
        }
        fn run(&self, _: &StageContext) -> Result<StageOutput, StageError> {
            Ok(StageOutput::new())
        }
    }

    fn registry(name: &str) -> Option<Box<dyn Stage>> {
        Some(Box::new(match name {
            "a" => Fake("a", &[], &["x"]),
            "b" => Fake("b", &["x"], &["y"]),
            "c" => Fake("c", &["x"], &["z"]),
            "d" => Fake("d", &["y", "z"], &["w"]),
            "loop1" => Fake("loop1", &["q"], &["p"]),
            "loop2" => Fake("loop2", &["p"], &["q"]),
            _ => return None,
        }))
    }

    fn file(text: &str) -> PipelineFile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn independent_stages_share_a_level() {
        let f = file(
            r#"name = "t"
            [[stage]]
            name = "d"
            inputs = ["y", "z"]
            outputs = ["w"]
            [[stage]]
            name = "a"
            outputs = ["x"]
            [[stage]]
            name = "b"
            inputs = ["x"]
            outputs = ["y"]
            [[stage]]
            name = "c"
            inputs = ["x"]
            outputs = ["z"]"#,
        );
        let plan = plan(&f, &registry).unwrap();
        let names: Vec<Vec<&str>> = plan.levels.iter().map(|l| l.iter().map(|s| s.stage.name()).collect()).collect();
        assert_eq!(names, vec![vec!["a"], vec!["b", "c"], vec!["d"]]);
    }

    #[test]
    fn cycles_unknown_stages_and_bad_wiring_are_refused() {
        let cyc = file(
            r#"name = "t"
            [[stage]]
            name = "loop1"
            inputs = ["q"]
            outputs = ["p"]
            [[stage]]
            name = "loop2"
            inputs = ["p"]
            outputs = ["q"]"#,
        );
        assert!(matches!(plan(&cyc, &registry), Err(ConfigError::Cycle(_))));
        let unknown = file("name = \"t\"\n[[stage]]\nname = \"nope\"");
        assert!(matches!(plan(&unknown, &registry), Err(ConfigError::UnknownStage(_))));
        let missing = file("name = \"t\"\n[[stage]]\nname = \"b\"\noutputs = [\"y\"]");
        assert!(matches!(plan(&missing, &registry), Err(ConfigError::Contract { .. })));
        let unproduced = file("name = \"t\"\n[[stage]]\nname = \"b\"\ninputs = [\"x\"]\noutputs = [\"y\"]");
        assert!(matches!(plan(&unproduced, &registry), Err(ConfigError::Unproduced { .. })));
        let wrong_out = file("name = \"t\"\n[[stage]]\nname = \"a\"\noutputs = [\"nope\"]");
        assert!(matches!(plan(&wrong_out, &registry), Err(ConfigError::Contract { .. })));
    }

    #[test]
    fn a_column_read_that_its_producer_does_not_declare_is_refused() {
        struct Declares;
        impl Stage for Declares {
            fn name(&self) -> &'static str {
                "a"
            }
            fn inputs(&self) -> &'static [&'static str] {
                &[]
            }
            fn outputs(&self) -> &'static [&'static str] {
                &["x"]
            }
            fn output_schema(&self, _: &str) -> Option<Schema> {
                Some(Schema::from_iter([
                    polars::prelude::Field::new("id".into(), polars::prelude::DataType::String),
                    polars::prelude::Field::new("v".into(), polars::prelude::DataType::Float64),
                ]))
            }
            fn run(&self, _: &StageContext) -> Result<StageOutput, StageError> {
                Ok(StageOutput::new())
            }
        }
        let text = "name = \"t\"\n[[stage]]\nname = \"a\"\noutputs = [\"x\"]\n[[stage]]\nname = \"reads\"\ninputs = [\"x\"]\n";
        for (wanted, checks, refused) in [
            ("v", "", None),
            ("w", "", Some(("reads", "`w`"))),
            ("v", "[checks.x]\nnot-null = [\"u\"]\n", Some(("checks.x", "`u`"))),
            ("v", "[checks.x]\nnot-null = [\"v\"]\n", None),
        ] {
            let f = file(&format!("{text}{checks}"));
            let reads = |name: &str| -> Option<Box<dyn Stage>> {
                match name {
                    "a" => Some(Box::new(Declares)),
                    "reads" => Some(Box::new(Reads(wanted))),
                    _ => None,
                }
            };
            let p = plan(&f, &reads).unwrap();
            match (check_columns(&f, &p), refused) {
                (Ok(()), None) => {}
                (Err(e), Some((who, column))) => {
                    let e = e.to_string();
                    assert!(e.contains(who) && e.contains(column) && e.contains("`x`") && e.contains("id, v"), "{e}");
                }
                (got, want) => panic!("{wanted} {checks}: {got:?}, expected {want:?}"),
            }
        }
    }
}
