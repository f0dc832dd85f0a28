//! Pipelines that extend each other: a file with `extends = "nightly.toml"` says only what
//! differs from the file it names, and the two are merged, key by key, before parsing.
//!
//! - Tables merge key by key, the extending file's value winning; any other value (a string, a
//!   number, an array) is replaced whole.
//! - `[[stage]]` entries merge by `name`: an entry naming a stage of the base file overrides its
//!   keys; a new name adds a stage. Parameters merge too: inline parameters over a base stage's
//!   `params = "params/x.toml"` are laid over that file's table.
//! - `remove = true` in a stage entry, a `[sources.<id>]` or a `[checks.<dataset>]` table takes
//!   that entry out of the base.
//! - `remove-inputs = ["x"]` in a stage entry takes those datasets out of the base stage's
//!   `inputs` (each must be there), e.g. the output of a stage the file removes.
//! - Relative paths in the base (source files, parameter files) stay relative to the base file.
//!
//! `mirador show-settings` prints the merged result. A file that extends nothing is read as
//! written, so its run keys do not change.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::ConfigError;

/// How many files a chain of `extends` may hold.
const MAX_DEPTH: usize = 8;

/// The merged table of a pipeline file, and the text hashed into its run key (the file's own
/// text when it extends nothing, else the merged table's).
pub(crate) fn load_merged(path: &Path) -> Result<(Table, String), ConfigError> {
    let mut chain = Vec::new();
    let (table, text, extended) = load_chain(path, &mut chain)?;
    Ok((table, if extended { text } else { text_of(path)? }))
}

fn text_of(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })
}

fn parse_err(path: &Path, message: impl Into<String>) -> ConfigError {
    ConfigError::Parse { path: path.to_owned(), message: message.into() }
}

fn load_chain(path: &Path, chain: &mut Vec<PathBuf>) -> Result<(Table, String, bool), ConfigError> {
    let key = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    if chain.contains(&key) {
        return Err(parse_err(path, "`extends` forms a cycle"));
    }
    if chain.len() >= MAX_DEPTH {
        return Err(parse_err(path, format!("`extends` chain longer than {MAX_DEPTH} files")));
    }
    chain.push(key);
    let text = text_of(path)?;
    let mut table: Table = toml::from_str(&text).map_err(|e| parse_err(path, e.to_string()))?;
    let Some(base) = table.get("extends") else { return Ok((table, text, false)) };
    let Value::String(base) = base else { return Err(parse_err(path, "`extends` must be a file path")) };
    let dir = path.parent().unwrap_or(Path::new(""));
    let base_path = dir.join(base);
    let (mut base_table, _, _) = load_chain(&base_path, chain)?;
    let base_dir = base_path.parent().unwrap_or(Path::new(""));
    if !same_dir(base_dir, dir) {
        rebase_paths(&mut base_table, base_dir);
    }
    base_table.remove("extends");
    merge_pipeline(&mut base_table, table.clone(), base_dir, path)?;
    table = base_table;
    let merged_text = toml::to_string(&table).map_err(|e| parse_err(path, e.to_string()))?;
    Ok((table, merged_text, true))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    std::path::absolute(a).ok() == std::path::absolute(b).ok()
}

/// Makes the base file's relative paths absolute, so that they still name the same files when
/// the extending file lives in another directory.
fn rebase_paths(table: &mut Table, base_dir: &Path) {
    let absolute = |p: &str| std::path::absolute(base_dir.join(p)).map_or_else(|_| p.to_owned(), |a| a.display().to_string());
    if let Some(Value::Table(sources)) = table.get_mut("sources") {
        for (_, source) in sources.iter_mut() {
            if let Some(Value::Array(paths)) = source.get_mut("paths") {
                for p in paths.iter_mut() {
                    if let Value::String(s) = p {
                        *s = absolute(s);
                    }
                }
            }
        }
    }
    if let Some(Value::Array(stages)) = table.get_mut("stage") {
        for stage in stages.iter_mut() {
            if let Some(Value::String(s)) = stage.get_mut("params") {
                *s = absolute(s);
            }
        }
    }
}

/// Lays `over` (an extending file) on `base`.
fn merge_pipeline(base: &mut Table, over: Table, base_dir: &Path, path: &Path) -> Result<(), ConfigError> {
    for (key, value) in over {
        if key == "stage" {
            let Value::Array(stages) = value else { return Err(parse_err(path, "`stage` must be an array of tables")) };
            let base_stages = match base.entry("stage").or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(a) => a,
                _ => return Err(parse_err(path, "the base file's `stage` must be an array of tables")),
            };
            for stage in stages {
                merge_stage(base_stages, stage, base_dir, path)?;
            }
        } else {
            merge_value(base, key, value);
        }
    }
    Ok(())
}

fn merge_stage(base_stages: &mut Vec<Value>, stage: Value, base_dir: &Path, path: &Path) -> Result<(), ConfigError> {
    let Value::Table(mut stage) = stage else { return Err(parse_err(path, "each `[[stage]]` must be a table")) };
    let Some(Value::String(name)) = stage.get("name").cloned() else {
        return Err(parse_err(path, "each `[[stage]]` needs a `name`"));
    };
    let found = base_stages.iter().position(|s| s.get("name").and_then(Value::as_str) == Some(name.as_str()));
    let remove = stage.remove("remove");
    let remove_inputs = stage.remove("remove-inputs");
    if remove_inputs.is_some() && (found.is_none() || matches!(remove, Some(Value::Boolean(true)))) {
        return Err(parse_err(path, format!("stage `{name}`: `remove-inputs` applies only to a stage of the base file that is kept")));
    }
    match (found, remove) {
        (Some(i), Some(Value::Boolean(true))) => {
            base_stages.remove(i);
        }
        (None, Some(Value::Boolean(true))) => {
            return Err(parse_err(path, format!("`remove = true` on stage `{name}`, which the base file does not have")));
        }
        (_, Some(other)) if !matches!(other, Value::Boolean(false)) => {
            return Err(parse_err(path, format!("stage `{name}`: `remove` must be true or false")));
        }
        (Some(i), _) => {
            let Value::Table(target) = &mut base_stages[i] else { unreachable!("checked above") };
            if let (Some(Value::String(file)), Some(Value::Table(_))) = (target.get("params"), stage.get("params")) {
                let file = base_dir.join(file);
                let text = text_of(&file)?;
                let table: Table = toml::from_str(&text).map_err(|e| parse_err(&file, e.to_string()))?;
                target.insert("params".into(), Value::Table(table));
            }
            for (key, value) in stage {
                merge_value(target, key, value);
            }
            if let Some(gone) = remove_inputs {
                remove_inputs_of(target, &gone, &name, path)?;
            }
        }
        (None, _) => base_stages.push(Value::Table(stage)),
    }
    Ok(())
}

/// Takes the datasets `gone` (an array of names) out of a stage's `inputs`; each must be there.
fn remove_inputs_of(stage: &mut Table, gone: &Value, name: &str, path: &Path) -> Result<(), ConfigError> {
    let bad = || parse_err(path, format!("stage `{name}`: `remove-inputs` must be an array of dataset names"));
    let Value::Array(gone) = gone else { return Err(bad()) };
    let Some(Value::Array(inputs)) = stage.get_mut("inputs") else {
        return Err(parse_err(path, format!("stage `{name}`: `remove-inputs`, but the stage has no `inputs`")));
    };
    for id in gone {
        let id = id.as_str().ok_or_else(bad)?;
        let at = inputs
            .iter()
            .position(|v| v.as_str() == Some(id))
            .ok_or_else(|| parse_err(path, format!("stage `{name}`: `remove-inputs` names `{id}`, which is not among its inputs")))?;
        inputs.remove(at);
    }
    Ok(())
}

/// Tables merge key by key (a table holding `remove = true` deletes the key); anything else is
/// replaced.
fn merge_value(base: &mut Table, key: String, value: Value) {
    match value {
        Value::Table(mut over) => {
            if over.get("remove") == Some(&Value::Boolean(true)) {
                base.remove(&key);
                return;
            }
            over.remove("remove");
            match base.get_mut(&key) {
                Some(Value::Table(target)) => {
                    for (k, v) in over {
                        merge_value(target, k, v);
                    }
                }
                _ => {
                    base.insert(key, Value::Table(over));
                }
            }
        }
        other => {
            base.insert(key, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const BASE: &str = r#"
name = "base"
seed = 1
[sources.a]
paths = ["a.csv"]
date-format = "%Y"
[sources.b]
paths = ["b.csv"]
[[stage]]
name = "one"
outputs = ["x"]
params = "p.toml"
[[stage]]
name = "two"
inputs = ["x"]
[checks.x]
unique = [["k"]]
not-null = ["k"]
"#;

    #[test]
    fn extending_file_overrides_by_key_and_stage_name() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        write(dir.path(), "p.toml", "alpha = 1\nbeta = 2\n");
        let child = write(
            dir.path(),
            "child.toml",
            r#"
extends = "base.toml"
name = "child"
[sources.a]
paths = ["other.csv"]
[sources.b]
remove = true
[[stage]]
name = "one"
params = { beta = 3 }
[[stage]]
name = "two"
remove = true
[[stage]]
name = "three"
inputs = ["x"]
[checks.x]
not-null = []
"#,
        );
        let (t, text) = load_merged(&child).unwrap();
        assert_eq!(t["name"].as_str(), Some("child"));
        assert_eq!(t["seed"].as_integer(), Some(1));
        assert_eq!(t["sources"]["a"]["paths"].as_array().unwrap()[0].as_str(), Some("other.csv"));
        assert_eq!(t["sources"]["a"]["date-format"].as_str(), Some("%Y"));
        assert!(t["sources"].get("b").is_none());
        let stages = t["stage"].as_array().unwrap();
        let names: Vec<_> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["one", "three"]);
        assert_eq!(stages[0]["params"]["alpha"].as_integer(), Some(1));
        assert_eq!(stages[0]["params"]["beta"].as_integer(), Some(3));
        assert_eq!(stages[0]["outputs"].as_array().unwrap().len(), 1);
        assert_eq!(t["checks"]["x"]["unique"].as_array().unwrap().len(), 1);
        assert!(t["checks"]["x"]["not-null"].as_array().unwrap().is_empty());
        assert!(text.contains("other.csv"));
    }

    #[test]
    fn remove_inputs_takes_datasets_out_of_a_kept_stage_and_names_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", &BASE.replace("inputs = [\"x\"]", "inputs = [\"x\", \"y\"]"));
        let ok = write(dir.path(), "ok.toml", "extends = \"base.toml\"\n[[stage]]\nname = \"two\"\nremove-inputs = [\"y\"]\n");
        let (t, _) = load_merged(&ok).unwrap();
        let inputs: Vec<_> = t["stage"][1]["inputs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(inputs, ["x"]);
        assert!(t["stage"][1].get("remove-inputs").is_none());
        for (body, says) in [
            ("name = \"two\"\nremove-inputs = [\"z\"]", "`z`, which is not among its inputs"),
            ("name = \"two\"\nremove-inputs = \"y\"", "must be an array"),
            ("name = \"one\"\nremove-inputs = [\"y\"]", "has no `inputs`"),
            ("name = \"new\"\nremove-inputs = [\"y\"]", "only to a stage of the base file"),
            ("name = \"two\"\nremove = true\nremove-inputs = [\"y\"]", "only to a stage of the base file"),
        ] {
            let bad = write(dir.path(), "bad.toml", &format!("extends = \"base.toml\"\n[[stage]]\n{body}\n"));
            let err = load_merged(&bad).unwrap_err().to_string();
            assert!(err.contains(says), "{body}: {err}");
        }
    }

    #[test]
    fn a_file_that_extends_nothing_keeps_its_text() {
        let dir = tempfile::tempdir().unwrap();
        let base = write(dir.path(), "base.toml", BASE);
        let (_, text) = load_merged(&base).unwrap();
        assert_eq!(text, BASE);
    }

    #[test]
    fn base_paths_stay_relative_to_the_base_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        write(dir.path(), "base.toml", BASE);
        let child = write(&dir.path().join("sub"), "child.toml", "extends = \"../base.toml\"\n");
        let (t, _) = load_merged(&child).unwrap();
        let a = PathBuf::from(t["sources"]["a"]["paths"].as_array().unwrap()[0].as_str().unwrap());
        std::fs::write(dir.path().join("a.csv"), "").unwrap();
        assert!(a.is_absolute());
        assert_eq!(std::fs::canonicalize(a).unwrap(), std::fs::canonicalize(dir.path().join("a.csv")).unwrap());
        let p = PathBuf::from(t["stage"].as_array().unwrap()[0]["params"].as_str().unwrap());
        assert!(p.is_absolute() && p.ends_with("p.toml"));
    }

    #[test]
    fn cycles_missing_bases_and_bad_removals_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.toml", "extends = \"b.toml\"\nname = \"a\"\n");
        write(dir.path(), "b.toml", "extends = \"a.toml\"\nname = \"b\"\n");
        assert!(load_merged(&a).unwrap_err().to_string().contains("cycle"));
        let c = write(dir.path(), "c.toml", "extends = \"missing.toml\"\nname = \"c\"\n");
        assert!(load_merged(&c).unwrap_err().to_string().contains("missing.toml"));
        write(dir.path(), "base.toml", BASE);
        let d = write(dir.path(), "d.toml", "extends = \"base.toml\"\n[[stage]]\nname = \"nope\"\nremove = true\n");
        assert!(load_merged(&d).unwrap_err().to_string().contains("nope"));
        let e = write(dir.path(), "e.toml", "extends = 3\n");
        assert!(load_merged(&e).unwrap_err().to_string().contains("file path"));
    }
}
