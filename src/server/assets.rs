//! The browser bundle (`/pkg/*`: the WASM, its JS glue, the stylesheet),
//! compressed once and sent compressed to every browser that accepts it.
//!
//! At start the server writes `NAME.br` (brotli, quality 11; 5 above 4 MB,
//! i.e. for a debug bundle) and `NAME.gz`
//! (gzip, level 9) beside each bundle file that lacks a current one, on a
//! blocking thread, each through a temporary file renamed into place, so a
//! request never sees half a file. `ServeDir` then picks the encoding the
//! request accepts and falls back to the plain file (also while the
//! compressed ones are still being written).
//!
//! Bundle files whose names carry a content hash (`mino.<hash>.wasm`,
//! written by cargo-leptos with `hash-files`) never change, so browsers
//! keep them for a year without asking (`immutable`); anything else is
//! revalidated (`no-cache`): an unchanged file costs a 304 with no body.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::Router;
use tower_http::services::ServeDir;

/// The bundle's file types worth compressing.
const COMPRESSIBLE: &[&str] = &["wasm", "js", "css"];

/// Serves `pkg_dir`, compressed where a compressed copy exists.
pub fn router<S: Clone + Send + Sync + 'static>(pkg_dir: PathBuf) -> Router<S> {
    Router::new()
        .fallback_service(
            ServeDir::new(pkg_dir)
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(axum::middleware::from_fn(cache_control))
}

async fn cache_control(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let forever = is_hashed(request.uri().path());
    let mut response = next.run(request).await;
    let value = if forever && response.status().is_success() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    response
}

/// Whether a bundle path names a content-hashed file: `name.<hash>.ext`,
/// the hash 22 or more characters of URL-safe base64 (cargo-leptos's).
fn is_hashed(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or_default();
    let parts: Vec<&str> = file.split('.').collect();
    parts.len() == 3
        && parts[1].len() >= 22
        && parts[1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Brotli's best quality for a release bundle (about 1.5 MB of WASM: a
/// few seconds, once); a debug bundle is 15 times bigger and would keep a
/// core busy for a minute at that quality, so it gets a fast one.
fn brotli_quality(len: usize) -> u32 {
    if len <= 4 * 1024 * 1024 {
        11
    } else {
        5
    }
}

/// One file's sizes: plain, brotli, gzip.
#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    pub file: String,
    pub plain: u64,
    pub brotli: u64,
    pub gzip: u64,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Writes `bytes` compressed by `compress` to `target`, through a
/// temporary file renamed into place.
fn write_atomically(
    target: &Path,
    compress: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let partial = target.with_extension(format!(
        "{}.partial-{}",
        target.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&partial)?;
    let written = compress(&mut file).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, target)?;
    Ok(std::fs::metadata(target)?.len())
}

/// Compresses every bundle file of `dir` whose compressed copies are
/// missing or older than it; returns the sizes of all of them.
pub fn precompress(dir: &Path) -> std::io::Result<Vec<Compressed>> {
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| COMPRESSIBLE.contains(&e))
        })
        .collect();
    entries.sort();
    for path in entries {
        let source_time = modified(&path);
        let stale = |copy: &Path| match (modified(copy), source_time) {
            (Some(copy), Some(source)) => copy < source,
            _ => true,
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let bytes = std::fs::read(&path)?;
        let br_path = dir.join(format!("{name}.br"));
        let brotli = if stale(&br_path) {
            write_atomically(&br_path, |file| {
                let mut w =
                    brotli::CompressorWriter::new(file, 64 * 1024, brotli_quality(bytes.len()), 22);
                w.write_all(&bytes)?;
                w.flush()
            })?
        } else {
            std::fs::metadata(&br_path)?.len()
        };
        let gz_path = dir.join(format!("{name}.gz"));
        let gzip = if stale(&gz_path) {
            write_atomically(&gz_path, |file| {
                let mut w = flate2::write::GzEncoder::new(file, flate2::Compression::best());
                w.write_all(&bytes)?;
                w.finish().map(drop)
            })?
        } else {
            std::fs::metadata(&gz_path)?.len()
        };
        out.push(Compressed {
            file: name,
            plain: bytes.len() as u64,
            brotli,
            gzip,
        });
    }
    Ok(out)
}

/// Compresses the bundle of `pkg_dir` on a blocking thread and logs what
/// it came to; a site that cannot be written is served uncompressed.
pub fn precompress_in_background(pkg_dir: PathBuf) {
    tokio::task::spawn_blocking(move || match precompress(&pkg_dir) {
        Ok(files) => {
            for f in files {
                tracing::info!(
                    file = %f.file, plain = f.plain, brotli = f.brotli, gzip = f.gzip,
                    "browser bundle compressed"
                );
            }
        }
        Err(e) => tracing::warn!(
            "the browser bundle in {} is served uncompressed: {e}",
            pkg_dir.display()
        ),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use std::io::Read;
    use tower::ServiceExt;

    fn site() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "mino-assets-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Text that compresses as a bundle does.
    fn bundle_text() -> String {
        (0..2_000)
            .map(|n| format!("function f{n}(a, b) {{ return a + b * {n}; }}\n"))
            .collect()
    }

    #[test]
    fn bundle_files_get_current_compressed_copies() {
        let dir = site();
        std::fs::write(dir.join("mino.js"), bundle_text()).unwrap();
        std::fs::write(dir.join("favicon.ico"), [0u8; 100]).unwrap();
        let first = precompress(&dir).unwrap();
        assert_eq!(first.len(), 1, "only wasm, js and css: {first:?}");
        let f = &first[0];
        assert!(f.brotli < f.plain / 5 && f.gzip < f.plain / 5, "{f:?}");
        assert!(!dir.join("favicon.ico.br").exists());
        // Both decompress to the file.
        let mut plain = String::new();
        brotli::Decompressor::new(std::fs::File::open(dir.join("mino.js.br")).unwrap(), 4096)
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, bundle_text());
        let mut plain = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join("mino.js.gz")).unwrap())
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, bundle_text());
        // A current copy is kept; a rebuilt file gets new ones.
        let kept = modified(&dir.join("mino.js.br"));
        assert_eq!(precompress(&dir).unwrap(), first);
        assert_eq!(modified(&dir.join("mino.js.br")), kept);
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("mino.js"), "let x = 1;").unwrap();
        let again = precompress(&dir).unwrap();
        assert_eq!(again[0].plain, 10);
        let mut plain = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.join("mino.js.gz")).unwrap())
            .read_to_string(&mut plain)
            .unwrap();
        assert_eq!(plain, "let x = 1;");
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn the_encoding_the_browser_accepts_is_sent() {
        let dir = site();
        std::fs::write(dir.join("mino.wasm"), bundle_text()).unwrap();
        precompress(&dir).unwrap();
        let app: Router = router(dir.clone());
        let get = |accept: Option<&'static str>| {
            let app = app.clone();
            async move {
                let mut req = Request::get("/mino.wasm");
                if let Some(a) = accept {
                    req = req.header(header::ACCEPT_ENCODING, a);
                }
                app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
            }
        };
        let header_of = |r: &Response, h: header::HeaderName| {
            r.headers().get(h).map(|v| v.to_str().unwrap().to_string())
        };
        let br = get(Some("gzip, deflate, br, zstd")).await;
        assert_eq!(br.status(), StatusCode::OK);
        assert_eq!(
            header_of(&br, header::CONTENT_ENCODING).as_deref(),
            Some("br")
        );
        assert_eq!(
            header_of(&br, header::CONTENT_TYPE).as_deref(),
            Some("application/wasm")
        );
        assert_eq!(
            header_of(&br, header::CACHE_CONTROL).as_deref(),
            Some("no-cache")
        );
        let gz = get(Some("gzip")).await;
        assert_eq!(
            header_of(&gz, header::CONTENT_ENCODING).as_deref(),
            Some("gzip")
        );
        let plain = get(None).await;
        assert_eq!(header_of(&plain, header::CONTENT_ENCODING), None);
        let body = axum::body::to_bytes(plain.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(body.len(), bundle_text().len());
        // A content-hashed name is cached for good; a missing one is not.
        let hashed = "mino.Ab3_dEf9-hIjKlMnOpQrSt.wasm";
        std::fs::write(dir.join(hashed), bundle_text()).unwrap();
        let fetch = |path: String| {
            let app = app.clone();
            async move {
                app.oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap()
            }
        };
        let r = fetch(format!("/{hashed}")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            header_of(&r, header::CACHE_CONTROL).as_deref(),
            Some("public, max-age=31536000, immutable")
        );
        let r = fetch("/mino.Zz3_dEf9-hIjKlMnOpQrSt.wasm".into()).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            header_of(&r, header::CACHE_CONTROL).as_deref(),
            Some("no-cache")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn hashed_names_are_told_apart() {
        assert!(is_hashed("/pkg/mino.Ab3_dEf9-hIjKlMnOpQrSt.wasm"));
        assert!(!is_hashed("/pkg/mino.wasm"));
        assert!(!is_hashed("/pkg/mino.wasm.br"));
        assert!(!is_hashed("/pkg/mino.short.css"));
    }
}
