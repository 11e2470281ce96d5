//! Docs link check: every relative link in the repository's Markdown files must point at a file
//! or folder that exists inside the repository. A clone must stand on its own, so links, and
//! paths merely mentioned in the text, that climb out of it fail too; public `http(s)://` URLs
//! are not checked.

use std::path::{Component, Path, PathBuf};

const SKIP_DIRS: &[&str] = &[
    "target",
    ".git",
    "tiffin-data",
    "tiffin-cluster",
    "tiffin-chain",
    "tiffin-broker-demo",
    "tiffin-bench-broker",
    "node_modules",
];

fn repo_root() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo and nextest set it"))
        .parent()
        .expect("guests/ has a parent")
        .to_path_buf()
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    // Scripts that other tests run create and delete work directories (a chain's, a
    // cluster's) while this walks: one that vanished holds no docs.
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        other => other.expect("readable directory"),
    };
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if path.is_dir() {
            if !SKIP_DIRS.contains(&name) {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The targets of the Markdown links in `text`: inline links `[text](target)` (images too) and
/// reference definitions `[label]: target`. Fenced code blocks are skipped: what they hold is
/// code, not links.
fn link_targets(text: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let marker = ["```", "~~~"].into_iter().find(|m| trimmed.starts_with(m));
        match (fence, marker) {
            (None, Some(m)) => fence = Some(m),
            (Some(open), Some(m)) if open == m => fence = None,
            (None, None) => {
                prose.push_str(line);
                prose.push('\n');
            }
            _ => {}
        }
    }
    let mut targets = Vec::new();
    let mut rest = prose.as_str();
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let Some(end) = after.find(')') else { break };
        targets.push(target_of(&after[..end]));
        rest = &after[end..];
    }
    for line in prose.lines() {
        let line = line.trim_start();
        if let Some(label_end) = line.find("]:")
            && line.starts_with('[')
            && !line[..label_end].contains(']')
        {
            targets.push(target_of(&line[label_end + 2..]));
        }
    }
    targets
}

/// The target of a link's destination text: its first word (a title may follow), without the
/// optional `<…>` brackets.
fn target_of(destination: &str) -> String {
    let target = destination.split_whitespace().next().unwrap_or_default();
    target.trim_matches(|c| c == '<' || c == '>').to_string()
}

fn is_external(target: &str) -> bool {
    target.is_empty()
        || target.starts_with('#')
        || ["http://", "https://", "mailto:"].iter().any(|p| target.starts_with(p))
}

/// Lexically normalises `path` (no symlinks are followed): `a/b/../c` becomes `a/c`.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Relative paths mentioned anywhere in `text` (code included) that go up a folder: words
/// holding `../`, without the quotes, brackets and punctuation around them.
fn climbing_paths(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "`()[]<>\"',;".contains(c))
        .filter(|word| word.contains("../"))
        .map(|word| word.trim_end_matches(['.', ':']).to_string())
        .collect()
}

/// Problems with one file's links: missing targets and targets outside `root`; and paths
/// mentioned outside links that lead out of `root` or to nothing inside it.
fn check_file(root: &Path, file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("utf-8 markdown");
    let shown = file.strip_prefix(root).unwrap_or(file).display().to_string();
    let folder = file.parent().expect("file in a folder");
    let targets = link_targets(&text);
    let mut problems = Vec::new();
    for path in climbing_paths(&text).into_iter().filter(|p| !targets.contains(p)) {
        let resolved = normalise(&folder.join(&path));
        if !resolved.starts_with(root) {
            problems.push(format!("{shown}: mentions {path}, which leaves the repository"));
        } else if !resolved.exists() {
            problems.push(format!("{shown}: mentions {path}, which is not in the repository"));
        }
    }
    for target in targets.into_iter().filter(|t| !is_external(t)) {
        let path = target.split('#').next().unwrap_or_default();
        let resolved = normalise(&folder.join(path));
        if !resolved.starts_with(root) {
            problems.push(format!("{shown}: link ({target}) leaves the repository"));
        } else if !resolved.exists() {
            problems.push(format!("{shown}: link ({target}) points at nothing"));
        }
    }
    problems
}

#[test]
fn every_relative_link_in_the_docs_stays_inside_the_repository_and_exists() {
    let root = normalise(&repo_root());
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    assert!(files.iter().any(|f| f.ends_with("README.md")), "README.md not found under {root:?}");
    let problems: Vec<String> = files.iter().flat_map(|f| check_file(&root, f)).collect();
    assert!(problems.is_empty(), "broken doc links:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_catches_links_that_leave_or_point_at_nothing() {
    let dir = std::env::temp_dir().join(format!("tiffin-docs-links-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("docs")).unwrap();
    let file = dir.join("docs/page.md");
    std::fs::write(
        &file,
        "[ok](../docs/page.md#top) [web](https://example.com) [anchor](#x)\n\
         [gone](missing.md) [out](../../elsewhere/DESIGN.md)\n\
         ```text\n[code](not-a-link.md)\n```\n\
         [ref]: ./nowhere.md\n\
         Inside: `../docs/page.md`. Outside, unlinked: see `../../notes/GUIDE.md`,\n\
         and `../notes/GUIDE.md`, which the clone lacks.\n",
    )
    .unwrap();
    let problems = check_file(&dir, &file);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(problems[0].contains("mentions ../../notes/GUIDE.md, which leaves"), "{problems:?}");
    assert!(problems[1].contains("mentions ../notes/GUIDE.md, which is not in"), "{problems:?}");
    assert!(problems[2].contains("(missing.md) points at nothing"), "{problems:?}");
    assert!(problems[3].contains("(../../elsewhere/DESIGN.md) leaves"), "{problems:?}");
    assert!(problems[4].contains("(./nowhere.md) points at nothing"), "{problems:?}");
}
