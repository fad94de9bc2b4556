//! syzkaller's descriptions in kfuzz's cache: `kfuzz descriptions fetch` brings `sys/linux`'s
//! `*.txt` and `*.const` files of one syzkaller commit into `<cache>/descriptions/<commit>/`, and a
//! `descriptions` entry `syzkaller` (or `syzkaller@REV`) names that folder. Never touches a kernel
//! tree, and never goes to the network when resolving a name.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};

use crate::shell::Shell;

/// Where syzkaller lives.
pub const SYZKALLER_URL: &str = "https://github.com/google/syzkaller";
/// The syzkaller commit `syzkaller` means: the descriptions kfuzz is tested with.
pub const SYZKALLER_REV: &str = "1e72964b0111319984575e60f266d1fa0a98abb5";

/// The name in kfuzz.toml and `--descriptions` for the fetched folder (`syzkaller@REV` for
/// another revision).
pub const SYZKALLER_NAME: &str = "syzkaller";

/// The bare repository the fetches go into, beside the extracted folders.
const REPO_DIR: &str = "syzkaller.git";
/// The folder inside syzkaller that holds the Linux descriptions.
const LINUX_DIR: &str = "sys/linux";

/// `<kfuzz cache>/descriptions`.
pub fn cache_root() -> PathBuf {
    crate::host::cache_dir().join("descriptions")
}

/// The folder of one fetched revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The full commit hash the revision resolved to (the folder's name).
    pub commit: String,
    pub dir: PathBuf,
    /// `*.txt` and `*.const` files in it.
    pub files: usize,
    /// True when the folder was already there and nothing was fetched.
    pub fresh: bool,
}

/// Brings `sys/linux` of `rev` (a commit, tag or branch of `url`) into the cache. A revision
/// already extracted is not fetched again: a full commit hash or a tag fetched before is
/// answered from the cache alone; a branch is looked up each time. A local repository (a path
/// or `file://`) is read in place; a remote one is fetched (that one revision, shallow over
/// HTTPS) into a bare repository in the cache.
pub fn fetch(url: &str, rev: &str, shell: &Shell) -> anyhow::Result<Fetched> {
    fetch_into(&cache_root(), url, rev, shell)
}

fn fetch_into(root: &Path, url: &str, rev: &str, shell: &Shell) -> anyhow::Result<Fetched> {
    let rev = rev.trim();
    if rev.is_empty() {
        bail!("--rev is empty: give a commit, tag or branch of {url}");
    }
    if is_full_hash(rev) {
        if let Some(f) = extracted(root, &rev.to_ascii_lowercase()) {
            return Ok(f);
        }
    }
    if let Some((commit, RevKind::Tag)) = read_name(root, rev) {
        if let Some(f) = extracted(root, &commit) {
            return Ok(f);
        }
    }
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create the cache folder {}", root.display()))?;
    let source = Source::new(url)?;
    shell.status("Fetching", format!("syzkaller {rev} from {url}"));
    let (repo, oid, kind) = match &source {
        Source::Local(path) => {
            let repo = git2::Repository::open(path)
                .with_context(|| format!("{} is not a git repository", path.display()))?;
            let (oid, kind) = resolve_local(&repo, rev).ok_or_else(|| not_found(rev, url))?;
            (repo, oid, kind)
        }
        Source::Remote(url) => {
            let repo = open_cache_repo(&root.join(REPO_DIR))?;
            let (oid, kind) = fetch_rev(&repo, url, rev, shell)?;
            (repo, oid, kind)
        }
    };
    let hash = oid.to_string();
    if kind != RevKind::Commit {
        write_name(root, rev, &hash, kind)?;
    }
    if let Some(f) = extracted(root, &hash) {
        return Ok(f);
    }
    let commit = repo.find_commit(oid)?;
    let files = extract(&repo, &commit, root, source.url()).with_context(|| {
        format!(
            "cannot extract {LINUX_DIR} of {hash} into {}",
            root.display()
        )
    })?;
    Ok(Fetched {
        dir: root.join(&hash),
        commit: hash,
        files,
        fresh: false,
    })
}

/// What a revision name turned out to be: a tag is taken never to move, a branch may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RevKind {
    Commit,
    Tag,
    Branch,
    /// Another ref (`HEAD`, `refs/…`) or a short hash.
    Other,
}

fn not_found(rev: &str, url: &str) -> anyhow::Error {
    if is_full_hash(rev) {
        anyhow!("`{rev}` is not a commit of {url}")
    } else {
        anyhow!("`{rev}` is not a commit, branch or tag of {url}")
    }
}

/// Where the descriptions come from.
enum Source {
    /// A repository on this machine, read in place.
    Local(PathBuf),
    /// A URL to fetch from.
    Remote(String),
}

impl Source {
    /// A path or `file://` URL is local; `https://` needs libgit2 built with TLS.
    fn new(url: &str) -> anyhow::Result<Source> {
        if url.starts_with("ssh://") || url.starts_with("git@") {
            bail!(
                "ssh URLs are not supported ({url}): use https, or clone syzkaller with git and \
                 pass the clone's path"
            );
        }
        if url.starts_with("https://") && !git2::Version::get().https() {
            bail!(
                "this kfuzz was built without HTTPS support in libgit2, so it cannot fetch \
                 {url}; clone syzkaller with git and pass the clone's path: \
                 `kfuzz descriptions fetch --url /path/to/syzkaller`"
            );
        }
        let path = match url.strip_prefix("file://") {
            Some(p) => p,
            None if url.contains("://") => return Ok(Source::Remote(url.to_string())),
            None => url,
        };
        let abs = Path::new(path)
            .canonicalize()
            .with_context(|| format!("{url} is neither a URL nor an existing git repository"))?;
        Ok(Source::Local(abs))
    }

    fn url(&self) -> &str {
        match self {
            Source::Local(p) => p.to_str().unwrap_or("the local repository"),
            Source::Remote(u) => u,
        }
    }
}

/// `rev` in a repository at hand: a commit (full or short hash), a tag, a branch or any ref.
fn resolve_local(repo: &git2::Repository, rev: &str) -> Option<(git2::Oid, RevKind)> {
    let commit_of = |r: git2::Reference| r.peel_to_commit().ok().map(|c| c.id());
    if is_full_hash(rev) {
        let oid = git2::Oid::from_str(rev).ok()?;
        let c = repo.find_object(oid, None).ok()?.peel_to_commit().ok()?;
        return Some((c.id(), RevKind::Commit));
    }
    let named = [
        (format!("refs/tags/{rev}"), RevKind::Tag),
        (format!("refs/heads/{rev}"), RevKind::Branch),
        (format!("refs/remotes/origin/{rev}"), RevKind::Branch),
    ];
    for (name, kind) in named {
        if let Some(oid) = repo.find_reference(&name).ok().and_then(commit_of) {
            return Some((oid, kind));
        }
    }
    let c = repo.revparse_single(rev).ok()?.peel_to_commit().ok()?;
    Some((c.id(), RevKind::Other))
}

/// The names fetched before (`v1`, `master`) and the commit each resolved to, one file per name
/// in `<root>/names/`, so that `syzkaller@NAME` needs no repository.
fn name_file(root: &Path, rev: &str) -> PathBuf {
    let escaped: String = rev
        .chars()
        .map(|c| match c {
            '/' => "%2F".to_string(),
            '%' => "%25".to_string(),
            c => c.to_string(),
        })
        .collect();
    root.join("names").join(escaped)
}

fn write_name(root: &Path, rev: &str, commit: &str, kind: RevKind) -> anyhow::Result<()> {
    let path = name_file(root, rev);
    let dir = root.join("names");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let kind = match kind {
        RevKind::Tag => "tag",
        RevKind::Branch => "branch",
        RevKind::Commit | RevKind::Other => "other",
    };
    crate::fsutil::write_atomic(&path, format!("{commit} {kind}\n").as_bytes())
}

fn read_name(root: &Path, rev: &str) -> Option<(String, RevKind)> {
    let text = std::fs::read_to_string(name_file(root, rev)).ok()?;
    let mut words = text.split_whitespace();
    let commit = words.next().filter(|c| is_full_hash(c))?.to_string();
    let kind = match words.next() {
        Some("tag") => RevKind::Tag,
        Some("branch") => RevKind::Branch,
        _ => RevKind::Other,
    };
    Some((commit, kind))
}

/// The folder of `commit` when an earlier fetch extracted it.
fn extracted(root: &Path, commit: &str) -> Option<Fetched> {
    let dir = root.join(commit);
    let files = std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .filter(|e| is_description_file(&e.file_name().to_string_lossy()))
        .count();
    Some(Fetched {
        commit: commit.to_string(),
        dir,
        files,
        fresh: true,
    })
}

fn is_description_file(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".txt") || name.ends_with(".const"))
}

fn is_full_hash(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_hex_prefix(rev: &str) -> bool {
    (4..=40).contains(&rev.len()) && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

fn open_cache_repo(path: &Path) -> anyhow::Result<git2::Repository> {
    git2::Repository::open_bare(path)
        .or_else(|_| git2::Repository::init_bare(path))
        .with_context(|| {
            format!(
                "cannot open or create the git repository {}",
                path.display()
            )
        })
}

/// Fetches what `rev` names from the remote `url` into the cache repository (that revision
/// only, shallow over HTTP) and returns its commit.
fn fetch_rev(
    repo: &git2::Repository,
    url: &str,
    rev: &str,
    shell: &Shell,
) -> anyhow::Result<(git2::Oid, RevKind)> {
    // libgit2 1.8 gets shallow negotiation right only over the stateless HTTP protocol (over
    // git:// it sends its wants twice and upload-pack gives up).
    let shallow = url.starts_with("https://") || url.starts_with("http://");
    let commit_at = |oid: git2::Oid| {
        repo.find_object(oid, None)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
    };
    if is_full_hash(rev) {
        let oid = git2::Oid::from_str(rev)?;
        if commit_at(oid).is_err() {
            let spec = format!("+{oid}:refs/kfuzz/{oid}");
            if let Err(by_hash) = fetch_refspecs(repo, url, &[&spec], shallow, shell) {
                // Not every server gives a bare commit: a branch or tag at that commit, else
                // every branch and tag.
                let at = list_refs(repo, url)?
                    .into_iter()
                    .find(|(n, o)| *o == oid && n.starts_with("refs/"));
                match at {
                    Some((name, _)) => {
                        let spec = format!("+{name}:refs/kfuzz/{oid}");
                        fetch_refspecs(repo, url, &[&spec], shallow, shell)?
                    }
                    None => fetch_everything(repo, url, shell)
                        .with_context(|| format!("{by_hash:#}"))?,
                }
            }
        }
        let commit = commit_at(oid).map_err(|_| not_found(rev, url))?;
        return Ok((commit, RevKind::Commit));
    }
    let advertised = list_refs(repo, url)?;
    let named = [
        (format!("refs/tags/{rev}"), RevKind::Tag),
        (format!("refs/heads/{rev}"), RevKind::Branch),
        (rev.to_string(), RevKind::Other),
    ];
    for (src, kind) in named {
        let is_ref = src.starts_with("refs/") || src == "HEAD";
        if !is_ref || !advertised.iter().any(|(n, _)| *n == src) {
            continue;
        }
        let dst = format!("refs/kfuzz/names/{rev}");
        let spec = format!("+{src}:{dst}");
        fetch_refspecs(repo, url, &[&spec], shallow, shell)?;
        let commit = repo
            .find_reference(&dst)
            .and_then(|r| r.peel_to_commit())
            .with_context(|| format!("`{rev}` of {url} does not name a commit"))?;
        return Ok((commit.id(), kind));
    }
    if is_hex_prefix(rev) {
        fetch_everything(repo, url, shell)?;
        let commit = repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_commit())
            .map_err(|e| match e.code() {
                git2::ErrorCode::Ambiguous => {
                    anyhow!("`{rev}` is an ambiguous commit prefix in {url}: give more of the hash")
                }
                _ => not_found(rev, url),
            })?;
        return Ok((commit.id(), RevKind::Other));
    }
    Err(not_found(rev, url))
}

/// The refs the remote advertises (`git ls-remote`).
fn list_refs(repo: &git2::Repository, url: &str) -> anyhow::Result<Vec<(String, git2::Oid)>> {
    let mut remote = repo.remote_anonymous(url)?;
    remote
        .connect(git2::Direction::Fetch)
        .with_context(|| format!("cannot connect to {url}"))?;
    let refs = remote
        .list()
        .with_context(|| format!("cannot list the refs of {url}"))?
        .iter()
        .map(|h| (h.name().to_string(), h.oid()))
        .collect();
    let _ = remote.disconnect();
    Ok(refs)
}

fn fetch_everything(repo: &git2::Repository, url: &str, shell: &Shell) -> anyhow::Result<()> {
    fetch_refspecs(
        repo,
        url,
        &[
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
        ],
        false,
        shell,
    )
}

/// Fetches `specs`; a shallow fetch the server does not take is tried again in full.
fn fetch_refspecs(
    repo: &git2::Repository,
    url: &str,
    specs: &[&str],
    shallow: bool,
    shell: &Shell,
) -> anyhow::Result<()> {
    match fetch_once(repo, url, specs, shallow, shell) {
        Err(_) if shallow => fetch_once(repo, url, specs, false, shell),
        result => result,
    }
}

fn fetch_once(
    repo: &git2::Repository,
    url: &str,
    specs: &[&str],
    shallow: bool,
    shell: &Shell,
) -> anyhow::Result<()> {
    let bar = shell.is_term().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("    Fetching [{bar:30}] {pos}/{len} objects")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.transfer_progress(|p| {
        if let Some(bar) = &bar {
            bar.set_length(p.total_objects() as u64);
            bar.set_position(p.received_objects() as u64);
        }
        true
    });
    let mut opts = git2::FetchOptions::new();
    opts.remote_callbacks(callbacks)
        .download_tags(git2::AutotagOption::None);
    if shallow {
        opts.depth(1);
    }
    let mut remote = repo.remote_anonymous(url)?;
    let result = remote.fetch(specs, Some(&mut opts), None);
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    result.with_context(|| format!("cannot fetch {} from {url}", specs.join(" ")))
}

/// Writes the commit's `sys/linux/*.txt` and `*.const` into `root/<commit>/`: a temporary folder
/// renamed into place, so a folder that exists is always complete.
fn extract(
    repo: &git2::Repository,
    commit: &git2::Commit,
    root: &Path,
    url: &str,
) -> anyhow::Result<usize> {
    let hash = commit.id().to_string();
    let entry = commit
        .tree()?
        .get_path(Path::new(LINUX_DIR))
        .map_err(|_| anyhow!("{hash} has no {LINUX_DIR} folder: is {url} syzkaller?"))?;
    let linux = repo
        .find_tree(entry.id())
        .map_err(|_| anyhow!("{LINUX_DIR} of {hash} is not a folder"))?;
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{hash}-"))
        // Renamed into place below: a folder like any other (umask applies), not 0700.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .tempdir_in(root)
        .with_context(|| format!("cannot create a temporary folder in {}", root.display()))?;
    let mut files = 0;
    let mut txt = 0;
    for e in linux.iter() {
        let Some(name) = e.name() else { continue };
        if e.kind() != Some(git2::ObjectType::Blob) || !is_description_file(name) {
            continue;
        }
        let blob = repo.find_blob(e.id())?;
        let path = tmp.path().join(name);
        std::fs::write(&path, blob.content())
            .with_context(|| format!("cannot write {}", path.display()))?;
        files += 1;
        txt += usize::from(name.ends_with(".txt"));
    }
    if txt == 0 {
        bail!("{LINUX_DIR} of {hash} has no *.txt descriptions: is {url} syzkaller?");
    }
    std::fs::write(
        tmp.path().join(".kfuzz-source"),
        format!("url = {url:?}\ncommit = {hash:?}\n"),
    )
    .context("cannot write .kfuzz-source")?;
    let dest = root.join(&hash);
    let tmp = tmp.keep();
    if let Err(e) = std::fs::rename(&tmp, &dest) {
        let _ = std::fs::remove_dir_all(&tmp);
        // Another fetch of the same commit got there first: its folder is as good.
        if !dest.is_dir() {
            return Err(e).with_context(|| format!("cannot create {}", dest.display()));
        }
    }
    Ok(files)
}

/// A `descriptions` entry of kfuzz.toml or `--descriptions`: `syzkaller` and `syzkaller@REV`
/// name the fetched folder of that revision; anything else is a folder relative to `base`.
pub fn resolve_entry(entry: &Path, base: &Path) -> anyhow::Result<PathBuf> {
    match syzkaller_rev(entry) {
        Some(rev) => fetched_dir(&cache_root(), rev),
        None => Ok(base.join(entry)),
    }
}

/// `syzkaller` → the pinned revision, `syzkaller@REV` → REV; None for a path.
fn syzkaller_rev(entry: &Path) -> Option<&str> {
    let s = entry.to_str()?;
    if s == SYZKALLER_NAME {
        return Some(SYZKALLER_REV);
    }
    s.strip_prefix(SYZKALLER_NAME)?.strip_prefix('@')
}

/// The extracted folder of `rev`: a full hash, a tag or branch an earlier fetch resolved (as it
/// was then), or a unique hash prefix of a folder there.
fn fetched_dir(root: &Path, rev: &str) -> anyhow::Result<PathBuf> {
    let rev_lc = rev.to_ascii_lowercase();
    let found = if is_full_hash(rev) {
        Some(root.join(&rev_lc)).filter(|d| d.is_dir())
    } else {
        read_name(root, rev)
            .map(|(commit, _)| root.join(commit))
            .filter(|d| d.is_dir())
            .or_else(|| unique_prefix(root, &rev_lc))
    };
    found.ok_or_else(|| {
        let flag = if rev == SYZKALLER_REV {
            String::new()
        } else {
            format!(" --rev {rev}")
        };
        anyhow!(
            "syzkaller's descriptions at {rev} are not in kfuzz's cache ({}): run \
             `kfuzz descriptions fetch{flag}` first",
            root.display()
        )
    })
}

fn unique_prefix(root: &Path, prefix: &str) -> Option<PathBuf> {
    if !is_hex_prefix(prefix) {
        return None;
    }
    let mut hits: Vec<PathBuf> = std::fs::read_dir(root)
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            is_full_hash(&n) && n.starts_with(prefix)
        })
        .map(|e| e.path())
        .collect();
    (hits.len() == 1).then(|| hits.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syzkaller_names_a_revision_and_anything_else_a_path() {
        assert_eq!(syzkaller_rev(Path::new("syzkaller")), Some(SYZKALLER_REV));
        assert_eq!(syzkaller_rev(Path::new("syzkaller@v1")), Some("v1"));
        assert_eq!(syzkaller_rev(Path::new("./syzkaller")), None);
        assert_eq!(syzkaller_rev(Path::new("syzkaller/sys/linux")), None);
        assert_eq!(
            resolve_entry(Path::new("ipc/descs"), Path::new("/tree")).unwrap(),
            Path::new("/tree/ipc/descs")
        );
    }

    #[test]
    fn a_revision_not_fetched_tells_how_to_fetch_it() {
        let root = tempfile::tempdir().unwrap();
        let err = fetched_dir(root.path(), SYZKALLER_REV).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("run `kfuzz descriptions fetch` first"),
            "{err}"
        );
        let err = fetched_dir(root.path(), "v1").unwrap_err();
        assert!(
            err.to_string()
                .ends_with("run `kfuzz descriptions fetch --rev v1` first"),
            "{err}"
        );
    }

    #[test]
    fn a_name_fetched_before_finds_its_folder() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(SYZKALLER_REV)).unwrap();
        write_name(root.path(), "feature/x", SYZKALLER_REV, RevKind::Branch).unwrap();
        assert_eq!(
            read_name(root.path(), "feature/x"),
            Some((SYZKALLER_REV.to_string(), RevKind::Branch))
        );
        assert_eq!(
            fetched_dir(root.path(), "feature/x").unwrap(),
            root.path().join(SYZKALLER_REV)
        );
        assert!(read_name(root.path(), "feature").is_none());
    }

    #[test]
    fn a_fetched_revision_is_found_by_hash_or_unique_prefix() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(SYZKALLER_REV);
        std::fs::create_dir(&dir).unwrap();
        assert_eq!(fetched_dir(root.path(), SYZKALLER_REV).unwrap(), dir);
        assert_eq!(fetched_dir(root.path(), &SYZKALLER_REV[..8]).unwrap(), dir);
        assert!(fetched_dir(root.path(), "abcdef12").is_err());
    }
}
