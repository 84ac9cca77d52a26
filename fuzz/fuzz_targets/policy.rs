//! Policy files: arbitrary text given to the policy parser ([`chunk_agent::policy::
//! parse_sources`]) never panics. Whatever parses also builds the SQL access controls of every
//! (workload, target) pair ([`chunk_agent::sql::SqlPolicy`]), as the agent does on load, and
//! every error renders with its file and a line inside the text.
//!
//! Input: UTF-8 text (invalid sequences replaced); a line `#---` splits it into several files,
//! read in order, so that cross-file checks (duplicate names, references) are reached too.
#![no_main]

use chunk_agent::policy::parse_sources;
use chunk_agent::sql::SqlPolicy;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let sources: Vec<(PathBuf, String)> = text
        .split("\n#---\n")
        .enumerate()
        .map(|(i, part)| (PathBuf::from(format!("p{i}.toml")), part.to_string()))
        .collect();
    match parse_sources(&sources) {
        Ok(set) => {
            let sql = SqlPolicy::new(&set);
            for w in &set.workloads {
                for t in &w.targets {
                    if let Some(control) = sql.access(&w.name, t) {
                        let _ = control.decide("select 1", &chunk_agent::sql::NoPreparedStatements);
                    }
                }
            }
        }
        Err(errors) => {
            assert!(
                !errors.0.is_empty(),
                "a failed parse reports at least one error"
            );
            for error in &errors.0 {
                let shown = error.to_string();
                assert!(
                    sources
                        .iter()
                        .any(|(path, _)| shown.contains(&*path.to_string_lossy())),
                    "an error names its file: {shown}"
                );
            }
        }
    }
});
