//! Embeds the dashboard (dashboard/src plus uPlot and jsVectorMap from npm) into the binary.
//! They are not committed: when dashboard/node_modules lacks them, this runs `npm ci` against
//! the lock file.
//! Also embeds the browser SDK, built and committed in sdk-wasm/dist (with its .br and .gz), so
//! no collector build needs the wasm toolchain.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const UPLOT: &[(&str, &str)] = &[
    ("uplot.esm.js", "node_modules/uplot/dist/uPlot.esm.js"),
    ("uplot.min.css", "node_modules/uplot/dist/uPlot.min.css"),
    // The Web page's country map (docs/dashboard-web.md); loaded only by that page.
    (
        "jsvectormap.min.js",
        "node_modules/jsvectormap/dist/jsvectormap.min.js",
    ),
    (
        "jsvectormap.min.css",
        "node_modules/jsvectormap/dist/jsvectormap.min.css",
    ),
    (
        "jsvectormap-world.js",
        "node_modules/jsvectormap/dist/maps/world.js",
    ),
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dashboard = manifest.join("../dashboard");
    println!("cargo:rerun-if-changed=../dashboard/src");
    println!("cargo:rerun-if-changed=../dashboard/package-lock.json");
    for (_, path) in UPLOT {
        println!("cargo:rerun-if-changed=../dashboard/{path}");
    }
    if UPLOT.iter().any(|(_, p)| !dashboard.join(p).exists()) {
        npm_ci(&dashboard);
    }
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(dashboard.join("src"))
        .expect("dashboard/src exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    files.extend(
        UPLOT
            .iter()
            .map(|(name, p)| ((*name).to_owned(), dashboard.join(p))),
    );
    files.sort();
    let mut out = String::from("/// The dashboard's files: (name, content type, bytes).\n");
    out.push_str("pub static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for (name, path) in &files {
        let path = path.canonicalize().expect("asset path");
        writeln!(
            out,
            "    ({name:?}, {:?}, include_bytes!({:?})),",
            content_type(name),
            path.display().to_string()
        )
        .expect("write to a String");
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out_dir.join("dashboard_assets.rs"), out).expect("write dashboard_assets.rs");
    embed_sdk(&manifest.join("../sdk-wasm/dist"), &out_dir);
    api_docs(&manifest, &out_dir);
}

/// The files of the browser SDK the collector serves (collector/src/routes/sdk.rs), each with
/// its precompressed `.br` and `.gz` when present.
const SDK_FILES: [&str; 5] = [
    "loader.js",
    "pulseline.js",
    "pulseline_bg.wasm",
    "web-vitals.js",
    "pulseline.d.ts",
];

fn embed_sdk(dist: &Path, out_dir: &Path) {
    println!("cargo:rerun-if-changed=../sdk-wasm/dist");
    let mut out = String::from("/// The built browser SDK's files: (name, bytes).\n");
    out.push_str("pub(super) static SDK_ASSETS: &[(&str, &[u8])] = &[\n");
    for name in SDK_FILES {
        for suffix in ["", ".br", ".gz"] {
            let path = dist.join(format!("{name}{suffix}"));
            println!("cargo:rerun-if-changed=../sdk-wasm/dist/{name}{suffix}");
            let Ok(path) = path.canonicalize() else {
                if suffix.is_empty() {
                    println!(
                        "cargo:warning=sdk-wasm/dist/{name} is missing: this collector will \
                         answer 404 for the browser SDK (restore sdk-wasm/dist from git, or \
                         run sdk-wasm/build.sh)"
                    );
                }
                continue;
            };
            writeln!(
                out,
                "    (\"{name}{suffix}\", include_bytes!({:?})),",
                path.display().to_string()
            )
            .expect("write to a String");
        }
    }
    out.push_str("];\n");
    std::fs::write(out_dir.join("sdk_assets.rs"), out).expect("write sdk_assets.rs");
}

/// The `/docs/api` page: collector/api-docs plus Swagger UI from npm (swagger-ui-dist, pinned in
/// its package.json). `--ignore-scripts`: its one dependency's install script only reports
/// download analytics.
fn api_docs(manifest: &Path, out_dir: &Path) {
    const FILES: &[(&str, &str)] = &[
        ("index.html", "index.html"),
        ("init.js", "init.js"),
        (
            "swagger-ui-bundle.js",
            "node_modules/swagger-ui-dist/swagger-ui-bundle.js",
        ),
        (
            "swagger-ui.css",
            "node_modules/swagger-ui-dist/swagger-ui.css",
        ),
    ];
    let dir = manifest.join("api-docs");
    println!("cargo:rerun-if-changed=api-docs/index.html");
    println!("cargo:rerun-if-changed=api-docs/init.js");
    println!("cargo:rerun-if-changed=api-docs/package-lock.json");
    if FILES.iter().any(|(_, p)| !dir.join(p).exists()) {
        let status = Command::new("npm")
            .args([
                "ci",
                "--omit=dev",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
            ])
            .current_dir(&dir)
            .status();
        match status {
            Ok(s) if s.success() => {}
            other => panic!(
                "`npm ci` in {} failed ({other:?}): the API docs viewer (Swagger UI) comes from \
                 the npm registry. Check access to it, or run `npm ci --ignore-scripts` there.",
                dir.display()
            ),
        }
    }
    let mut out = String::from("/// The API docs page's files: (name, content type, bytes).\n");
    out.push_str("pub static API_DOCS: &[(&str, &str, &[u8])] = &[\n");
    for (name, path) in FILES {
        let path = dir.join(path).canonicalize().expect("API docs asset path");
        writeln!(
            out,
            "    ({name:?}, {:?}, include_bytes!({:?})),",
            content_type(name),
            path.display().to_string()
        )
        .expect("write to a String");
    }
    out.push_str("];\n");
    std::fs::write(out_dir.join("api_docs_assets.rs"), out).expect("write api_docs_assets.rs");
}

fn npm_ci(dashboard: &Path) {
    let status = Command::new("npm")
        .args(["ci", "--omit=dev", "--no-audit", "--no-fund"])
        .current_dir(dashboard)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "`npm ci` in {} failed ({s}): the dashboard's chart and map libraries (uPlot, \
             jsVectorMap) come from the npm registry. Check network access to it, or run \
             `npm ci` there yourself.",
            dashboard.display()
        ),
        Err(e) => panic!(
            "cannot run npm ({e}): building the collector needs Node.js and npm once, to fetch \
             the dashboard's chart and map libraries from the npm registry. Install them (e.g. \
             `apt-get install nodejs npm`) and build again."
        ),
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}
