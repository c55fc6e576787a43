//! clusterlab: PostgreSQL test clusters on Vagrant.
//!
//! The pipeline, one module per stage:
//! `spec` (YAML as written) -> `plan` (validated, with `facts` per major) ->
//! `render` (Tera templates from `templates` into the working directory) ->
//! `vagrant` and `providers` (bring-up, snapshots, fast paths; each provider's
//! capabilities and Vagrantfile part) -> `verify` (replication works).
//!
//! Around it: `cluster` runs the verbs (up, reset, destroy, status) and keeps
//! `state` (state.json, the lock); `topology` is the live topology, which the
//! `drills` (one file each) take and return; `matrix` runs many specs;
//! `writer` is the background writer's process and files, which the drills
//! start and `cluster` stops on reset and destroy.
//! No module uses one that uses it back (tests/no_cycles.rs).

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
pub mod server_log;
pub mod signals;
pub mod spans;
pub mod spec;
pub mod state;
pub mod templates;
pub mod topology;
pub mod vagrant;
pub mod verify;
pub mod workdir;
pub mod writer;
