//! Compiles every `.proto` under `runmesh/` (and `testing/` with the `testing` feature) without a
//! system `protoc`: protox parses them, tonic-prost-build generates the code, and the encoded
//! descriptor set is written with extension options intact so `google.api.http` survives for
//! reflection, the edge's transcoder and OpenAPI.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let testing = env::var_os("CARGO_FEATURE_TESTING").is_some();

    let mut include_dirs = vec![root.clone()];
    let mut files = Vec::new();
    collect_protos(&root.join("runmesh"), &mut files)?;
    if testing {
        include_dirs.push(root.join("testing"));
        collect_protos(&root.join("testing"), &mut files)?;
    }
    files.sort();
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|file| {
            include_dirs
                .iter()
                .filter_map(|dir| file.strip_prefix(dir).ok())
                .min_by_key(|p| p.components().count())
                .map(Path::to_path_buf)
                .ok_or_else(|| format!("{} is outside the include dirs", file.display()))
        })
        .collect::<Result<_, _>>()?;

    let mut compiler = protox::Compiler::new(&include_dirs)?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&relative)?;
    let encoded = compiler.encode_file_descriptor_set();
    fs::write(out_dir.join("runmesh_descriptor.bin"), &encoded)?;

    let descriptor_set = prost_types::FileDescriptorSet::decode(encoded.as_slice())?;
    let packages: Vec<String> = descriptor_set
        .file
        .iter()
        .filter_map(|f| f.package.clone())
        .filter(|p| !p.starts_with("google.protobuf"))
        .collect();

    // `prost::Name` on every message, so events pack into `google.protobuf.Any` by their full name.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds_with_config(descriptor_set, config)?;

    fs::write(out_dir.join("packages.rs"), module_tree(&packages))?;

    println!("cargo:rerun-if-changed={}", root.join("runmesh").display());
    println!("cargo:rerun-if-changed={}", root.join("google").display());
    println!("cargo:rerun-if-changed={}", root.join("testing").display());
    Ok(())
}

fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

/// One nested `pub mod` per package segment, each leaf including its generated file, so a new
/// package needs no edit to `lib.rs`.
fn module_tree(packages: &[String]) -> String {
    #[derive(Default)]
    struct Node {
        children: BTreeMap<String, Node>,
        package: Option<String>,
    }
    fn render(node: &Node, out: &mut String) {
        if let Some(package) = &node.package {
            out.push_str(&format!(
                "include!(concat!(env!(\"OUT_DIR\"), \"/{package}.rs\"));\n"
            ));
        }
        for (name, child) in &node.children {
            out.push_str(&format!(
                "#[allow(clippy::all, clippy::pedantic, missing_docs)]\npub mod {name} {{\n"
            ));
            render(child, out);
            out.push_str("}\n");
        }
    }
    let mut root = Node::default();
    for package in packages {
        let mut node = &mut root;
        for segment in package.split('.') {
            node = node.children.entry(segment.to_string()).or_default();
        }
        node.package = Some(package.clone());
    }
    let mut out = String::new();
    render(&root, &mut out);
    out
}
