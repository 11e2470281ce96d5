//! Worker kinds: what an agent can be configured to serve (`--kinds exec,prove,join,aux,snark`).
//! A GPU host serves `prove,join`; a small CPU box serves `exec,aux`.

use tiffin_taskdb::Kind;

/// Runs guests and plans the job (CPU, memory).
pub const EXEC: &str = "exec";
/// Proves (and lifts) segments (GPU-bound).
pub const PROVE: &str = "prove";
/// Joins and resolves succinct receipts (GPU-bound).
pub const JOIN: &str = "join";
/// Finalizes receipts and runs the housekeeper (light).
pub const AUX: &str = "aux";
/// Groth16 conversion (needs the Groth16 backend).
pub const SNARK: &str = "snark";

/// Every kind, in the order `--kinds` lists them.
pub const ALL: &[&str] = &[EXEC, PROVE, JOIN, AUX, SNARK];

/// Parses a comma-separated kind list, rejecting unknown names.
pub fn parse_list(s: &str) -> Result<Vec<Kind>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !ALL.contains(&part) {
            return Err(format!("unknown worker kind {part:?}; valid kinds: {}", ALL.join(",")));
        }
        out.push(Kind::new(part));
    }
    if out.is_empty() {
        return Err("no worker kinds given".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn kind_lists_parse_and_reject_unknowns() {
        assert_eq!(super::parse_list("exec, prove").unwrap().len(), 2);
        assert!(super::parse_list("exec,gpu").unwrap_err().contains("gpu"));
        assert!(super::parse_list(" , ").is_err());
    }
}
