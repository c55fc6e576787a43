//! clusterlab: PostgreSQL test clusters on Vagrant.
//!
//! The pipeline, one module per stage:
//! `spec` (YAML as written) -> `plan` (validated, with `facts` per major) ->
//! `render` (Tera templates into the working directory) -> `vagrant` and
//! `providers` (bring-up, snapshots, fast paths) -> `verify` (replication works).

pub mod boxbuild;
pub mod cli;
pub mod cluster;
pub mod drills;
pub mod error;
pub mod facts;
pub mod matrix;
pub mod plan;
pub mod providers;
pub mod quote;
pub mod render;
pub mod runner;
pub mod signals;
pub mod spans;
pub mod spec;
pub mod state;
pub mod templates;
pub mod topology;
pub mod vagrant;
pub mod verify;
pub mod workdir;
