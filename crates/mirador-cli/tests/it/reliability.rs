//! Reliability cases of the command line: crashes in the carried chain and in a forced publish
//! (fault injection at publish steps), the pseudonymisation key policy, pipeline names,
//! directory permissions under any umask, parameter ranges, the build id in the run key,
//! reused outputs checked against a re-run ingest, and what a failed run keeps.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::cli::{assert_same_outputs, mirador, repo};

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("latest/manifest.json")).unwrap()).unwrap()
}

fn latest_id(out: &Path) -> String {
    std::fs::read_link(out.join("latest")).unwrap().file_name().unwrap().to_string_lossy().into_owned()
}

/// A copy of a shipped pipeline in `dir`, its paths made absolute, edited by `edit`.
fn pipeline_copy(dir: &Path, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let repo = repo();
    let text = std::fs::read_to_string(repo.join("pipelines").join(name))
        .unwrap()
        .replace("\"../sample_data/", &format!("\"{}/sample_data/", repo.display()))
        .replace("\"params/", &format!("\"{}/pipelines/params/", repo.display()));
    let path = dir.join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

#[test]
fn a_pipeline_name_that_climbs_out_of_the_output_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("a/b/c");
    std::fs::create_dir_all(&work).unwrap();
    for name in ["../../../x", "x/../../y", ".x", "a b"] {
        let p = pipeline_copy(&work, "nightly.toml", |t| t.replacen("name = \"nightly\"", &format!("name = \"{name}\""), 1));
        let o = mirador(&["run", p.to_str().unwrap(), "--out", "out"], &work);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        assert!(text(&o).contains("not a plain name"), "{}", text(&o));
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written beside the working tree");
    assert!(!work.join("out").exists());
}

#[test]
fn a_pipeline_with_real_data_needs_its_own_pseudonym_key() {
    let dir = tempfile::tempdir().unwrap();
    // The nightly pipeline as if it read real data: not marked as sample data.
    let real = pipeline_copy(dir.path(), "nightly.toml", |t| t.replace("sample-data = true", ""));
    let out = dir.path().join("out");
    let run = |key: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mirador"));
        c.args(["run", real.to_str().unwrap(), "--out", out.to_str().unwrap()]).current_dir(dir.path()).env_remove("RUST_LOG");
        match key {
            Some(k) => c.env("MIRADOR_PSEUDONYM_KEY", k),
            None => c.env_remove("MIRADOR_PSEUDONYM_KEY"),
        };
        c.output().unwrap()
    };
    // No key in the environment: the demo key of params/rank.toml is refused.
    let o = run(None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("demo key") && text(&o).contains("MIRADOR_PSEUDONYM_KEY"), "{}", text(&o));
    // The demo key given in the environment is refused too, whatever spaces surround it.
    for k in mirador_rank::pseudonym::DEMO_KEYS {
        let o = run(Some(&format!(" {k}")));
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("demo key"), "{}", text(&o));
    }
    // No key anywhere: refused, saying what to set.
    let bare = pipeline_copy(dir.path(), "nightly.toml", |t| {
        t.replace("sample-data = true", "")
            .replace(&format!("params = \"{}/pipelines/params/rank.toml\"", repo().display()), "params = { offices = [] }")
    });
    let o = Command::new(env!("CARGO_BIN_EXE_mirador"))
        .args(["run", bare.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .env_remove("MIRADOR_PSEUDONYM_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("needs a pseudonymisation key") && text(&o).contains("MIRADOR_PSEUDONYM_KEY"), "{}", text(&o));
    assert!(!out.exists(), "refused before anything ran");
}

/// Every pseudonymisation key written in the repository's pipelines is a known demo key, and
/// only pipelines marked as sample data use one.
#[test]
fn every_key_in_the_repository_is_a_known_demo_key() {
    let mut found = 0;
    let mut files = vec![];
    for sub in ["pipelines", "pipelines/params"] {
        for e in std::fs::read_dir(repo().join(sub)).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                files.push(e.path());
            }
        }
    }
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines().filter(|l| l.trim_start().starts_with("pseudonym-key")) {
            let key = line.split('"').nth(1).unwrap();
            assert!(mirador_rank::pseudonym::is_demo_key(key), "{}: a key not listed as a demo key", f.display());
            found += 1;
        }
    }
    assert!(found >= 2, "the sample pipelines' keys were found");
}

#[test]
fn out_of_range_parameters_are_configuration_errors_naming_stage_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let params = dir.path().join("params");
    std::fs::create_dir_all(&params).unwrap();
    for e in std::fs::read_dir(repo().join("pipelines/params")).unwrap().flatten() {
        std::fs::copy(e.path(), params.join(e.file_name())).unwrap();
    }
    let cases = [
        ("fraud_model.toml", "n-trees = 1000", "n-trees = 0", "fraud_model", "n-trees"),
        ("fraud_model.toml", "learning-rate = 0.1", "learning-rate = 0.0", "fraud_model", "learning-rate"),
        ("kmeans_scores.toml", "max-k = 4", "max-k = 1000", "kmeans_scores", "max-k"),
        ("kmeans_scores.toml", "min-silhouette = 0.55", "min-silhouette = 2.0", "kmeans_scores", "min-silhouette"),
    ];
    for (file, good, bad, stage, key) in cases {
        let original = std::fs::read_to_string(repo().join("pipelines/params").join(file)).unwrap();
        assert!(original.contains(good), "{file} has `{good}`");
        std::fs::write(params.join(file), original.replace(good, bad)).unwrap();
        let p = dir.path().join("p.toml");
        let pipeline_text = std::fs::read_to_string(repo().join("pipelines/nightly.toml"))
            .unwrap()
            .replace("\"../sample_data/", &format!("\"{}/sample_data/", repo().display()));
        std::fs::write(&p, pipeline_text).unwrap();
        let out = dir.path().join(format!("out-{key}"));
        let o = mirador(&["-q", "run", p.to_str().unwrap(), "--out", out.to_str().unwrap()], dir.path());
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", text(&o));
        let err = text(&o);
        assert!(err.contains(&format!("`{stage}`")) && err.contains(&format!("`{key}`")) && err.contains("out of range"), "{err}");
        std::fs::write(params.join(file), original).unwrap();
    }
}

/// A rebuilt binary (here: the same binary with a byte appended) does not take the earlier
/// binary's run for its own; the same binary again does.
#[test]
fn a_changed_binary_does_not_find_its_run_already_committed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let changed = dir.path().join("mirador-changed");
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_mirador")).unwrap();
    bytes.push(0);
    std::fs::write(&changed, bytes).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(&changed, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The nightly pipeline's ingest stage alone.
    let p = pipeline_copy(dir.path(), "nightly.toml", |t| {
        let parts: Vec<&str> = t.split("[[stage]]").collect();
        format!("{}[[stage]]{}", parts[0], parts[1])
    });
    let args = ["-q", "run", p.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let o = mirador(&args, &repo());
    assert!(o.status.success() && text(&o).contains("committed"), "{}", text(&o));
    let first = manifest(&out);
    let o = mirador(&args, &repo());
    assert!(text(&o).contains("already committed"), "{}", text(&o));
    let o = Command::new(&changed).args(args).current_dir(repo()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("already committed"), "{}", text(&o));
    let second = manifest(&out);
    assert_ne!(first["build_id"], second["build_id"]);
    assert_ne!(first["run_id"], second["run_id"]);
}

/// The carried chain killed after a night's run directory is in place but before `latest` moves:
/// the next run finishes the publish, and the following night continues from that night, so no
/// declaration is lost from the carried history.
#[test]
fn a_carried_night_killed_before_latest_moves_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let slice = |name: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(repo().join("sample_data/declarations.csv")).unwrap();
        let mut lines = text.lines();
        let mut kept = vec![lines.next().unwrap().to_owned()];
        kept.extend(lines.filter(|l| l.split(',').nth(2).is_some_and(|d| d.len() == 10 && d >= from && d < to)).map(str::to_owned));
        let path = dir.path().join(name);
        std::fs::write(&path, kept.join("\n") + "\n").unwrap();
        (format!("declarations={}", path.display()), kept.len() as u64 - 1)
    };
    let night = |source: &str, crash: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mirador"));
        c.args(["-q", "run", "pipelines/carried.toml", "--out", out.to_str().unwrap(), "--source", source]).current_dir(repo());
        if let Some(step) = crash {
            c.env("MIRADOR_CRASH_AT", step);
        }
        c.output().unwrap()
    };
    let (first, n1) = slice("first.csv", "2023-01-01", "2023-09-01");
    let (sep, n2) = slice("sep.csv", "2023-09-01", "2023-10-01");
    let (oct, n3) = slice("oct.csv", "2023-10-01", "2023-11-01");
    let o = night(&first, None);
    assert!(o.status.success(), "{}", text(&o));
    let first_id = latest_id(&out);
    let o = night(&sep, Some("renamed"));
    assert!(!o.status.success(), "killed");
    assert_eq!(latest_id(&out), first_id, "the kill came before `latest` moved");
    // The next night: the interrupted publish is finished first, and the night continues from it.
    let o = night(&oct, None);
    assert!(o.status.success(), "{}", text(&o));
    let m = manifest(&out);
    let sep_id = m["carried_from"].as_str().unwrap().to_owned();
    assert_ne!(sep_id, first_id, "the night continues from September, not from the night before it");
    // The model's history and the audit window hold every declaration of the three nights, once.
    let ingested = |id: &str| {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("runs").join(id).join("manifest.json")).unwrap()).unwrap();
        let ingest = m["stages"].as_array().unwrap().iter().find(|s| s["name"] == "ingest").unwrap().clone();
        ingest["rows_out"]["declarations"].as_u64().unwrap()
    };
    let (a, b, c) = (ingested(&first_id), ingested(&sep_id), ingested(&latest_id(&out)));
    assert!(a > 0 && b > 0 && c > 0 && a <= n1 && b <= n2 && c <= n3);
    let model: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("latest/fraud_model/model.json")).unwrap()).unwrap();
    assert_eq!(model["history"]["global"]["seen"].as_u64(), Some(a + b + c), "no night is missing from the history");
    let rank = m["stages"].as_array().unwrap().iter().find(|s| s["name"] == "rank").unwrap();
    assert_eq!(rank["metrics"]["window_rows"].as_u64(), Some(a + b + c), "no night is missing from the audit window");
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert!(journal.contains("\"recovered\""), "{journal}");
    // September given again is already committed; `latest` stays on October.
    let head = latest_id(&out);
    let o = night(&sep, None);
    assert!(text(&o).contains("already committed"), "{}", text(&o));
    assert_eq!(latest_id(&out), head);
}

/// A forced re-run killed at each step of its publish: `latest` always points at a complete run,
/// no complete copy is deleted, and the next run finishes with the same outputs.
#[test]
fn a_forced_publish_killed_at_any_step_keeps_a_complete_latest() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference");
    let run = |out: &Path, force: bool, crash: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mirador"));
        c.args(["-q", "run", "pipelines/nightly.toml", "--out", out.to_str().unwrap()]).current_dir(repo());
        if force {
            c.arg("--force");
        }
        if let Some(step) = crash {
            c.env("MIRADOR_CRASH_AT", step);
        }
        c.output().unwrap()
    };
    assert!(run(&reference, false, None).status.success());
    for step in ["aside", "renamed"] {
        let out = dir.path().join(step);
        std::fs::create_dir_all(&out).unwrap();
        // Start from a copy of the committed reference output root.
        let o = Command::new("cp").args(["-a", &format!("{}/.", reference.display()), out.to_str().unwrap()]).status().unwrap();
        assert!(o.success());
        let o = run(&out, true, Some(step));
        assert!(!o.status.success(), "killed at {step}");
        assert!(out.join("latest/manifest.json").is_file(), "latest points at a complete run after a kill at `{step}`");
        let o = run(&out, false, None);
        assert!(o.status.success() && text(&o).contains("already committed"), "{}", text(&o));
        assert_same_outputs(&reference.join("latest"), &out.join("latest"), step);
        let odd: Vec<_> = std::fs::read_dir(out.join("runs"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(odd.is_empty(), "{step}: {odd:?}");
    }
}

/// Under umask 000, every directory of the output root is still owner-only (0700) and every file
/// 0600, so no other user can replace a published file.
#[cfg(unix)]
#[test]
fn outputs_are_owner_only_under_any_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("deep/out");
    let script = format!("umask 000 && exec \"$0\" -q run pipelines/nightly.toml --out '{}' --only ingest", out.display());
    let o = Command::new("sh").args(["-c", &script, env!("CARGO_BIN_EXE_mirador")]).current_dir(repo()).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    fn walk(dir: &Path, seen: &mut Vec<(PathBuf, u32, bool)>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.file_type().is_symlink() {
                continue;
            }
            seen.push((e.path(), meta.permissions().mode() & 0o777, meta.is_dir()));
            if meta.is_dir() {
                walk(&e.path(), seen);
            }
        }
    }
    let deep = dir.path().join("deep");
    let mut seen = vec![(deep.clone(), std::fs::metadata(&deep).unwrap().permissions().mode() & 0o777, true)];
    walk(&deep, &mut seen);
    assert!(seen.iter().filter(|s| s.2).count() >= 4, "{seen:?}");
    for (path, mode, is_dir) in seen {
        assert_eq!(mode, if is_dir { 0o700 } else { 0o600 }, "{}", path.display());
    }
}
