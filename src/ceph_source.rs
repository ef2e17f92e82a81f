//! Where the `osd df tree` JSON comes from: the `ceph` CLI, the mgr `restful` module, or a URL.
//!
//! Each source returns the bare `osd df tree` JSON bytes; unwrapping the envelopes the HTTP
//! sources put around it is pure and tested here. Parsing the tree is [`crate::osd_df`]'s job.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use url::Url;

use crate::http::{self, HttpError};

/// A size no `osd df tree` answer comes near (about 1 KiB per OSD).
const MAX_TREE_BYTES: u64 = 64 * 1024 * 1024;
/// How much of a failing command's stderr is kept for its error.
const STDERR_KEPT: u64 = 64 * 1024;

/// Where `osd df tree` comes from.
#[derive(Clone, Debug)]
pub enum CephSource {
    /// The `ceph` CLI.
    Command {
        binary: PathBuf,
        conf: Option<PathBuf>,
        keyring: Option<PathBuf>,
        name: Option<String>,
        timeout: Duration,
    },
    /// The mgr `restful` module (deprecated upstream, still in Pacific).
    Restful {
        url: Url,
        user: String,
        key: crate::secret::Secret,
        ca_file: Option<PathBuf>,
        insecure_skip_verify: bool,
        timeout: Duration,
    },
    /// A URL answering the JSON raw or wrapped as `{"status":..,"output":{..}}`.
    Http {
        url: Url,
        ca_file: Option<PathBuf>,
        timeout: Duration,
    },
}

impl CephSource {
    /// Where the tree comes from, for messages.
    pub fn describe(&self) -> String {
        match self {
            CephSource::Command { binary, .. } => format!("`{} osd df tree`", binary.display()),
            CephSource::Restful { url, .. } => {
                format!("the mgr restful module at {}", crate::http::shown(url))
            }
            CephSource::Http { url, .. } => crate::http::shown(url),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CephSourceError {
    #[error("cannot run {binary}: {source}")]
    Spawn {
        binary: String,
        source: std::io::Error,
    },
    #[error("`{command}` did not finish within {timeout:?} (is a mgr active?)")]
    CommandTimeout { command: String, timeout: Duration },
    #[error("`{command}` printed more than {limit} bytes: not the answer asked for")]
    CommandOutputTooLarge { command: String, limit: u64 },
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{url}: {source}")]
    Http { url: String, source: HttpError },
    #[error("{url}: HTTP {status}: {excerpt}")]
    Status {
        url: String,
        status: u16,
        excerpt: String,
    },
    #[error("{url}: unexpected answer: {reason}")]
    Envelope { url: String, reason: String },
    #[error("{from}: not supported for {what}: configure a `command` source")]
    Unsupported { from: String, what: &'static str },
}

/// Fetches `osd df tree` as JSON bytes.
pub async fn fetch_osd_df_tree(source: &CephSource) -> Result<Vec<u8>, CephSourceError> {
    match source {
        CephSource::Command { .. } => run_ceph(source, &["osd", "df", "tree"], "osd df tree").await,
        CephSource::Restful {
            url,
            user,
            key,
            ca_file,
            insecure_skip_verify,
            timeout,
        } => {
            let client = http::client(
                *timeout,
                *timeout,
                ca_file.as_deref(),
                *insecure_skip_verify,
            )
            .map_err(|source| CephSourceError::Http {
                url: http::shown(url),
                source,
            })?;
            let request_url = url.join("request?wait=1").map_err(|e| envelope(url, e))?;
            let command =
                serde_json::json!({"prefix": "osd df", "output_method": "tree", "format": "json"});
            let body = send(
                client
                    .post(request_url.clone())
                    .basic_auth(user, Some(key.expose()))
                    .json(&command),
                &request_url,
                *timeout,
            )
            .await?;
            let (outb, id) =
                unwrap_restful(&body).map_err(|reason| envelope(&request_url, reason))?;
            // The module keeps every request until deleted; free ours (best effort).
            if let Ok(del) = url.join(&format!("request/{id}")) {
                let _ = client
                    .delete(del)
                    .basic_auth(user, Some(key.expose()))
                    .send()
                    .await;
            }
            Ok(outb.into_bytes())
        }
        CephSource::Http {
            url,
            ca_file,
            timeout,
        } => {
            let body = get(url, ca_file.as_deref(), *timeout).await?;
            unwrap_wrapped(body).map_err(|reason| envelope(url, reason))
        }
    }
}

/// GETs a page of the mgr or a proxy (`osd df tree`, prometheus metrics): bounded in size and
/// time, no redirect followed, a non-2xx answer an error with an excerpt of its body.
pub async fn get(
    url: &Url,
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
) -> Result<Vec<u8>, CephSourceError> {
    let client =
        http::client(timeout, timeout, ca_file, false).map_err(|source| CephSourceError::Http {
            url: http::shown(url),
            source,
        })?;
    send(client.get(url.clone()), url, timeout).await
}

/// Fetches `osd pool stats` (per pool client I/O and recovery rates) as JSON bytes: from the
/// `command` source only (the other sources serve `osd df tree` alone).
pub async fn fetch_pool_stats(source: &CephSource) -> Result<Vec<u8>, CephSourceError> {
    run_ceph(source, &["osd", "pool", "stats"], "pool stats").await
}

/// Runs `ceph COMMAND --format json` as a `command` source is configured; the other sources
/// cannot run `what`.
async fn run_ceph(
    source: &CephSource,
    command: &[&str],
    what: &'static str,
) -> Result<Vec<u8>, CephSourceError> {
    let CephSource::Command {
        binary,
        conf,
        keyring,
        name,
        timeout,
    } = source
    else {
        return Err(CephSourceError::Unsupported {
            from: source.describe(),
            what,
        });
    };
    let mut args: Vec<String> = Vec::new();
    if let Some(c) = conf {
        args.extend(["--conf".into(), c.display().to_string()]);
    }
    if let Some(k) = keyring {
        args.extend(["--keyring".into(), k.display().to_string()]);
    }
    if let Some(n) = name {
        args.extend(["--name".into(), n.clone()]);
    }
    // Without an active mgr, mgr commands (`osd df`, `osd pool stats`) wait forever; this
    // makes the CLI give up on its own, and the timeout below kills it if it does not.
    args.push(format!("--connect-timeout={}", timeout.as_secs().max(1)));
    args.push(format!(
        "--rados-mon-op-timeout={}",
        timeout.as_secs().max(1)
    ));
    args.extend(command.iter().map(|c| c.to_string()));
    args.extend(["--format", "json"].map(String::from));
    run_command(&binary.display().to_string(), &args, *timeout).await
}

fn envelope(url: &url::Url, reason: impl ToString) -> CephSourceError {
    CephSourceError::Envelope {
        url: http::shown(url),
        reason: reason.to_string(),
    }
}

async fn send(
    req: reqwest::RequestBuilder,
    url: &url::Url,
    timeout: Duration,
) -> Result<Vec<u8>, CephSourceError> {
    let http_err = |source| CephSourceError::Http {
        url: http::shown(url),
        source,
    };
    let resp = req
        .send()
        .await
        .map_err(|e| http_err(http::classify(e, timeout)))?;
    let status = resp.status();
    let location = http::location(resp.headers());
    let body = http::read_limited(resp, MAX_TREE_BYTES, timeout)
        .await
        .map_err(http_err)?;
    if !status.is_success() {
        let excerpt = match location.filter(|_| status.is_redirection()) {
            Some(to) => {
                format!("redirected to {to}; redirects are not followed: configure that URL")
            }
            None => http::excerpt(&body),
        };
        return Err(CephSourceError::Status {
            url: http::shown(url),
            status: status.as_u16(),
            excerpt,
        });
    }
    Ok(body)
}

async fn run_command(
    binary: &str,
    args: &[String],
    timeout: Duration,
) -> Result<Vec<u8>, CephSourceError> {
    let command = format!("{binary} {}", args.join(" "));
    let mut child = tokio::process::Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CephSourceError::Spawn {
            binary: binary.to_string(),
            source,
        })?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    // Both pipes are read at once, so a chatty stderr cannot stall the command; what is kept of
    // each is bounded. Dropping the child (an error, the timeout) kills it.
    let errors = tokio::spawn(read_pipe(stderr, STDERR_KEPT, true));
    let run = async {
        let out = read_pipe(stdout, MAX_TREE_BYTES + 1, false).await?;
        if out.len() as u64 > MAX_TREE_BYTES {
            return Ok(None);
        }
        child.wait().await.map(|status| Some((status, out)))
    };
    let spawn_err = |source| CephSourceError::Spawn {
        binary: binary.to_string(),
        source,
    };
    let (status, out) = tokio::time::timeout(timeout + Duration::from_secs(2), run)
        .await
        .map_err(|_| CephSourceError::CommandTimeout {
            command: command.clone(),
            timeout,
        })?
        .map_err(spawn_err)?
        .ok_or_else(|| CephSourceError::CommandOutputTooLarge {
            command: command.clone(),
            limit: MAX_TREE_BYTES,
        })?;
    if !status.success() {
        let stderr = errors.await.ok().and_then(Result::ok).unwrap_or_default();
        return Err(CephSourceError::CommandFailed {
            command,
            status: status.to_string(),
            stderr: http::excerpt(String::from_utf8_lossy(&stderr).trim().as_bytes()),
        });
    }
    Ok(out)
}

/// Reads up to `keep` bytes of a pipe; with `drain`, reads and drops the rest, so the writer
/// never blocks on a full pipe.
async fn read_pipe(
    pipe: Option<impl AsyncRead + Unpin>,
    keep: u64,
    drain: bool,
) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    if let Some(mut pipe) = pipe {
        (&mut pipe).take(keep).read_to_end(&mut kept).await?;
        if drain {
            tokio::io::copy(&mut pipe, &mut tokio::io::sink()).await?;
        }
    }
    Ok(kept)
}

#[derive(Deserialize)]
struct RestfulAnswer {
    id: serde_json::Value,
    #[serde(default)]
    finished: Vec<RestfulCommand>,
    #[serde(default)]
    failed: Vec<RestfulCommand>,
}

#[derive(Deserialize)]
struct RestfulCommand {
    #[serde(default)]
    outb: String,
    #[serde(default)]
    outs: String,
}

/// The mgr restful module answers `{"finished":[{"outb":"<the JSON, as a string>"}], ...}`.
/// Returns the inner JSON and the request id.
fn unwrap_restful(body: &[u8]) -> Result<(String, String), String> {
    let answer: RestfulAnswer = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not the restful module's request JSON ({e}): {}",
            http::excerpt(body)
        )
    })?;
    if let Some(f) = answer.failed.first() {
        return Err(format!("the mgr says the command failed: {}", f.outs));
    }
    let first = answer
        .finished
        .into_iter()
        .next()
        .ok_or("no finished command in the answer")?;
    let id = match answer.id {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    };
    Ok((first.outb, id))
}

/// The legacy ceph-rest-api wraps the JSON as `{"status":"OK","output":{...}}`; a bare tree is
/// passed through.
fn unwrap_wrapped(body: Vec<u8>) -> Result<Vec<u8>, String> {
    #[derive(Deserialize)]
    struct Wrapped {
        output: Box<serde_json::value::RawValue>,
    }
    match serde_json::from_slice::<Wrapped>(&body) {
        Ok(w) => Ok(w.output.get().as_bytes().to_vec()),
        Err(_) => Ok(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::fixture;

    #[test]
    fn restful_answer_yields_the_inner_tree() {
        let (outb, id) = unwrap_restful(&fixture("mgr-restful-request-osd-df-tree.json")).unwrap();
        assert_eq!(id, "140176996424080");
        let tree = crate::osd_df::parse(outb.as_bytes()).unwrap();
        assert_eq!(tree.roots[0].name, "default");
    }

    #[test]
    fn restful_failures_and_garbage_are_explained() {
        let failed = br#"{"id":"1","finished":[],"failed":[{"outb":"","outs":"EPERM"}]}"#;
        assert!(unwrap_restful(failed).unwrap_err().contains("EPERM"));
        let err = unwrap_restful(b"<html>login</html>").unwrap_err();
        assert!(err.contains("<html>login"), "{err}");
        assert!(unwrap_restful(br#"{"id":"1","finished":[]}"#).is_err());
    }

    #[test]
    fn legacy_wrapper_is_removed_and_bare_trees_pass() {
        let tree = fixture("ceph-osd-df-tree.json");
        let mut wrapped = br#"{"status":"OK","output":"#.to_vec();
        wrapped.extend_from_slice(&tree);
        wrapped.push(b'}');
        let inner = unwrap_wrapped(wrapped).unwrap();
        assert_eq!(crate::osd_df::parse(&inner).unwrap().roots[0].kb, 2097152);
        assert_eq!(unwrap_wrapped(tree.clone()).unwrap(), tree);
    }

    async fn sh_error(script: &str) -> CephSourceError {
        let args = ["-c".to_string(), script.to_string()];
        run_command("sh", &args, Duration::from_secs(20))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn pool_stats_need_the_command_source() {
        let source = CephSource::Http {
            url: Url::parse("http://127.0.0.1:9/tree").unwrap(),
            ca_file: None,
            timeout: Duration::from_secs(1),
        };
        let err = fetch_pool_stats(&source).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "http://127.0.0.1:9/tree: not supported for pool stats: configure a `command` source"
        );
    }

    #[tokio::test]
    async fn a_failing_command_reports_its_stderr() {
        let err = sh_error("echo 'Error ETIMEDOUT: osd df' >&2; exit 110").await;
        assert!(err.to_string().contains("ETIMEDOUT"), "{err}");
        let err = run_command("sleep", &["5".into()], Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(
            matches!(err, CephSourceError::CommandTimeout { .. }),
            "{err}"
        );
        // Endless output is cut at the limit (not buffered until the timeout).
        let err = sh_error("yes").await;
        assert!(
            matches!(err, CephSourceError::CommandOutputTooLarge { .. }),
            "{err}"
        );
        // A command that floods stderr cannot stall on the pipe: its failure is reported.
        let err = sh_error("head -c 1000000 /dev/zero | tr '\\0' x >&2; exit 5").await;
        assert!(err.to_string().contains("exit status: 5"), "{err}");
        let err = run_command("/nonexistent/ceph", &[], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ceph"), "{err}");
    }
}
