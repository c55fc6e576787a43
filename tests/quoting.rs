//! Hostile values stay data. A value from the spec (a postgresql.conf setting,
//! a pg_hba line, the box name, the libvirt kernel command line) is full of
//! quotes, `$(...)`, backticks, `#{...}`, backslashes and unicode; the rendered
//! scripts and Vagrantfile must still parse, and running the generated code
//! must hand the value through byte for byte without executing any of it.
//!
//! Every hostile fragment that would run something tries to create a file
//! named MARKER: in the working directory (`touch MARKER`, `>MARKER`) or at
//! `$MARKER` / `ENV["MARKER"]`, both of which point into the case's temp dir.
//! Needs bash, sh and ruby.

use clusterlab::plan;
use clusterlab::quote;
use clusterlab::render::{File, Renderer};
use clusterlab::spec::{self, Source};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

mod support;
use support::{check_ok, configure_blocks, conf_fn, file, output, run_blocks};

const SETTING: &str = "clusterlab.hostile";

/// Pieces that mean something to sh, bash, Ruby, YAML, printf or PostgreSQL.
const FRAGMENTS: &[&str] = &[
    "'",
    "\"",
    "''",
    "\\",
    "\\'",
    "\\\\",
    "$(touch MARKER)",
    "$(touch \"$MARKER\")",
    "`touch MARKER`",
    "'; touch MARKER; '",
    "\"; touch MARKER; \"",
    ">MARKER",
    "${MARKER}",
    "$HOME",
    "$'\\x41'",
    "#{`touch MARKER`}",
    "#{File.write(ENV['MARKER'], 'x')}",
    "%s%n%d",
    ";",
    "&&",
    "|",
    "*",
    "!",
    "#",
    " ",
    "  ",
    "\t",
    "ünï",
    "日本語",
    "🐘",
    "\u{feff}",
    "\u{2028}",
    "\u{85}",
    "~",
    "null",
    ": ",
    "- ",
    "{a: b}",
    "&anchor",
    "*alias",
    "!!str",
    "0.50",
    "1e3",
    "on",
];

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FRAGMENTS).prop_map(String::from),
        1 => "[a-z0-9=._/-]{1,6}",
    ]
}

/// A single-line hostile value: what the planner accepts for postgresql_conf and pg_hba.
fn hostile() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 1..8).prop_map(|v| v.concat())
}

/// A hostile value that may span lines: fine for the box name and cmd_line
/// (Ruby strings), and for the quoting functions themselves.
fn hostile_multiline_any() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => fragment(),
        1 => Just("\n".to_string()),
        1 => Just("\r".to_string()),
        1 => Just("\r\n".to_string()),
        1 => Just("\n__END__\n".to_string()),
        1 => Just("\n=begin\n".to_string()),
        1 => Just("\nEOF\n".to_string()),
    ];
    prop::collection::vec(piece, 1..10).prop_map(|v| v.concat())
}

/// The same without CR LF, which does not survive a Ruby literal: see
/// `rb_keeps_crlf` (ignored, a known bug).
fn hostile_multiline() -> impl Strategy<Value = String> {
    hostile_multiline_any().prop_map(|s| s.replace("\r\n", "\r \n"))
}

/// Arbitrary text for the quoting functions (no NUL: it cannot be in argv).
fn any_text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.replace('\0', ""))
}

/// Ruby source for `-e`: the locale may be C, so say the literal is UTF-8.
fn ruby_e(body: &str) -> String {
    format!("# encoding: utf-8\n{body}")
}

// --- The quoting functions on their own, through the real interpreters. ---

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sh_quoting_survives_sh(s in prop_oneof![hostile_multiline_any(), any_text()]) {
        let dir = tempfile::tempdir().unwrap();
        let script = format!("printf %s {}", quote::sh(&s));
        let out = output(Command::new("sh").arg("-c").arg(&script).current_dir(dir.path()).env("MARKER", dir.path().join("MARKER")));
        check_ok("sh -c", &out, &script);
        prop_assert_eq!(String::from_utf8_lossy(&out.stdout).into_owned(), s);
        prop_assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "something ran: the temp dir is not empty");
    }

    #[test]
    fn rb_quoting_survives_ruby(s in prop_oneof![hostile_multiline(), any_text().prop_filter("CR LF: see rb_keeps_crlf", |s| !s.contains("\r\n"))]) {
        let dir = tempfile::tempdir().unwrap();
        let script = ruby_e(&format!("print {}", quote::rb(&s)));
        let out = output(Command::new("ruby").arg("-e").arg(&script).current_dir(dir.path()).env("MARKER", dir.path().join("MARKER")));
        check_ok("ruby -e", &out, &script);
        prop_assert_eq!(String::from_utf8_lossy(&out.stdout).into_owned(), s);
        prop_assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "something ran: the temp dir is not empty");
    }
}

/// Ruby drops the CR of a CR LF inside a string literal (it normalises line
/// ends while reading source), so `quote::rb("a\r\nb")` reads back as "a\nb".
#[test]
fn rb_keeps_crlf() {
    let s = "box\r\nname";
    let out = output(Command::new("ruby").arg("-e").arg(ruby_e(&format!("print {}", quote::rb(s)))));
    check_ok("ruby -e", &out, s);
    assert_eq!(String::from_utf8_lossy(&out.stdout), s);
}

// --- Whole specs with hostile values: plan, render, parse, run. ---

/// The spec as YAML text (serde_yaml writes the quoting), parsed back by the
/// real parser, and checked to hold exactly the values we put in.
fn hostile_spec(conf_value: &str, hba_line: &str, box_name: &str, cmd_line: &str) -> (spec::Spec, Source) {
    use serde_yaml::{Mapping, Value};
    let mut m = Mapping::new();
    let s = |x: &str| Value::String(x.to_string());
    m.insert(s("name"), s("hostile"));
    m.insert(s("version"), s("15"));
    m.insert(s("provider"), s("libvirt"));
    m.insert(s("box"), s(box_name));
    let mut po = Mapping::new();
    po.insert(s("cmd_line"), s(cmd_line));
    m.insert(s("provider_options"), Value::Mapping(po));
    let mut topo = Mapping::new();
    topo.insert(s("followers"), Value::Number(1.into()));
    m.insert(s("topology"), Value::Mapping(topo));
    let mut conf = Mapping::new();
    conf.insert(s(SETTING), s(conf_value));
    m.insert(s("postgresql_conf"), Value::Mapping(conf));
    m.insert(s("pg_hba"), Value::Sequence(vec![s(hba_line)]));
    let text = serde_yaml::to_string(&Value::Mapping(m)).unwrap();
    let src = Source::new("mem.yaml", text);
    let spec = spec::parse(&src).unwrap_or_else(|e| panic!("{e}\n--- yaml ---\n{}", src.text));
    // The YAML round trip itself must be exact, or the checks below would blame the templates.
    assert_eq!(spec.box_name.as_deref(), Some(box_name), "box name lost in YAML:\n{}", src.text);
    assert_eq!(spec.provider_options.cmd_line.as_deref(), Some(cmd_line), "cmd_line lost in YAML:\n{}", src.text);
    assert_eq!(spec.postgresql_conf[SETTING].0, conf_value, "setting lost in YAML:\n{}", src.text);
    assert_eq!(spec.pg_hba, vec![hba_line.to_string()], "pg_hba lost in YAML:\n{}", src.text);
    (spec, src)
}

fn render(conf_value: &str, hba_line: &str, box_name: &str, cmd_line: &str) -> Vec<File> {
    let (spec, src) = hostile_spec(conf_value, hba_line, box_name, cmd_line);
    let plan = plan::build(&spec, &src).unwrap_or_else(|e| panic!("{e}"));
    Renderer::new(None).unwrap().render_plan(&plan).unwrap()
}

/// A stub `Vagrant` that records every `x.y = value` and string argument,
/// by the path of receivers (`config.vm.define{}.vm.box`), as hex bytes.
const VAGRANT_STUB: &str = r##"
$records = []
class Recorder < BasicObject
  def initialize(path)
    @path = path
  end

  def method_missing(name, *args, **kw, &blk)
    n = name.to_s
    if n.end_with?("=")
      $records << ["#{@path}.#{n.chomp("=")}", args[0]]
      return args[0]
    end
    args.each { |a| $records << ["#{@path}.#{n}()", a] if a.is_a?(::String) }
    kw.each { |k, v| $records << ["#{@path}.#{n}(#{k}:)", v] if v.is_a?(::String) }
    blk.call(::Recorder.new("#{@path}.#{n}{}")) if blk
    ::Recorder.new("#{@path}.#{n}")
  end

  def respond_to_missing?(*)
    true
  end
end

module Vagrant
  def self.configure(version, &blk)
    raise "configure(#{version.inspect})" unless version == "2"
    blk.call(Recorder.new("config"))
  end
end

load ARGV[0]
File.open(ARGV[1], "wb") do |f|
  $records.each { |k, v| f.write(k, "\t", v.to_s.b.unpack1("H*"), "\n") }
end
"##;

/// Runs the Vagrantfile under the stub; returns (receiver path, value) pairs.
fn run_vagrantfile(dir: &Path, vagrantfile: &str) -> Vec<(String, Vec<u8>)> {
    std::fs::write(dir.join("Vagrantfile"), vagrantfile).unwrap();
    let stub = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(stub.path(), VAGRANT_STUB).unwrap();
    let out = output(
        Command::new("ruby")
            .arg(stub.path())
            .arg("Vagrantfile")
            .arg("records.tsv")
            .current_dir(dir)
            .env("MARKER", dir.join("MARKER"))
            .env("HOME", dir),
    );
    check_ok("ruby (stub Vagrant)", &out, vagrantfile);
    let tsv = std::fs::read_to_string(dir.join("records.tsv")).unwrap();
    std::fs::remove_file(dir.join("records.tsv")).unwrap();
    std::fs::remove_file(dir.join("Vagrantfile")).unwrap();
    tsv.lines()
        .map(|l| {
            let (k, hex) = l.split_once('\t').unwrap();
            let bytes = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
            (k.to_string(), bytes)
        })
        .collect()
}

fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

fn syntax_check(files: &[File], dir: &Path) {
    for f in files {
        let p = dir.join("check.tmp");
        std::fs::write(&p, &f.content).unwrap();
        let out = if f.path.starts_with("scripts") {
            output(Command::new("bash").arg("-n").arg(&p))
        } else {
            assert_eq!(f.path, Path::new("Vagrantfile"));
            output(Command::new("ruby").arg("-c").arg(&p))
        };
        std::fs::remove_file(&p).unwrap();
        check_ok(&format!("syntax check of {}", f.path.display()), &out, &f.content);
    }
}

/// PostgreSQL's configuration parser reads `'...'` with `''` for a quote and
/// backslash escapes: what clusterlab.conf must hold for the value.
fn expected_conf_line(value: &str) -> String {
    format!("{SETTING} = '{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn check_hostile_case(conf_value: &str, hba_line: &str, box_name: &str, cmd_line: &str) {
    let files = render(conf_value, hba_line, box_name, cmd_line);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    syntax_check(&files, d);

    // (a) The Vagrantfile hands the box and cmd_line to Vagrant as they are.
    let records = run_vagrantfile(d, file(&files, "Vagrantfile"));
    let boxes: Vec<&Vec<u8>> = records.iter().filter(|(k, _)| k.ends_with("}.vm.box")).map(|(_, v)| v).collect();
    assert_eq!(boxes.len(), 2, "one `m.vm.box =` per node, recorded: {records:?}");
    for b in boxes {
        assert_eq!(String::from_utf8_lossy(b), box_name, "box name changed on its way through Ruby");
        assert_eq!(b.as_slice(), box_name.as_bytes());
    }
    let cmd_lines: Vec<&Vec<u8>> = records.iter().filter(|(k, _)| k.ends_with(".cmd_line")).map(|(_, v)| v).collect();
    assert_eq!(cmd_lines.len(), 2, "one `lv.cmd_line =` per node, recorded: {records:?}");
    for c in cmd_lines {
        assert_eq!(c.as_slice(), cmd_line.as_bytes(), "cmd_line changed on its way through Ruby");
    }
    assert!(entries(d).is_empty(), "running the Vagrantfile left files behind: {:?}", entries(d));

    // (b) The leader's configure() writes the setting and the pg_hba line as data.
    let leader = file(&files, "scripts/pg1.sh");
    let blocks = configure_blocks(leader);
    assert_eq!(blocks.len(), 2, "configure() should write two files (clusterlab.conf, pg_hba.conf)");
    let written = run_blocks(d, &conf_fn(leader), &blocks);
    let conf_last = written[0].lines().last().unwrap_or_default();
    assert_eq!(conf_last, expected_conf_line(conf_value), "the spec's setting (last line of clusterlab.conf)");
    assert_eq!(written[0].matches(&format!("\n{SETTING} = ")).count(), 1, "the setting once:\n{}", written[0]);
    let hba_last = written[1].lines().last().unwrap_or_default();
    assert_eq!(hba_last, hba_line, "the spec's pg_hba line (last line of pg_hba.conf)");
    assert!(!d.join("MARKER").exists(), "MARKER was created: something in a value was executed");
    assert!(entries(d).is_empty(), "running configure() left files behind: {:?}", entries(d));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_values_stay_data(conf_value in hostile(), hba_line in hostile(), box_name in hostile_multiline(), cmd_line in hostile_multiline()) {
        check_hostile_case(&conf_value, &hba_line, &box_name, &cmd_line);
    }
}

/// The same, with one value everywhere and the nastiest fragments at once, so
/// the case runs on every `cargo test` whatever proptest draws.
#[test]
fn all_fragments_at_once() {
    let v = r##"'"''\\'\\$(touch MARKER)`touch MARKER`'; touch MARKER; '>MARKER${MARKER}$HOME#{`touch MARKER`}#{File.write(ENV['MARKER'], 'x')}%s%n	ünï🐘\"##;
    check_hostile_case(v, v, v, &format!("{v}\n__END__\n{v}"));
}

/// The checks above can fail: an unquoted value executes and is caught.
#[test]
fn the_harness_catches_an_unquoted_value() {
    let dir = tempfile::tempdir().unwrap();
    let block = "  {\n    conf x a$(touch MARKER)\n  } > \"$tmp\"".to_string();
    let written = run_blocks(dir.path(), "conf() { printf '%s = %s\\n' \"$1\" \"$2\"; }", &[block]);
    assert_eq!(written[0], "x = a\n");
    assert!(dir.path().join("MARKER").exists(), "the harness would not notice an executed value");
    let records = run_vagrantfile(
        dir.path(),
        "Vagrant.configure(\"2\") do |config|\n  config.vm.define 'a' do |m|\n    m.vm.box = \"#{`touch MARKER2`}x\"\n  end\nend\n",
    );
    assert_eq!(records.last().unwrap().1, b"x");
    assert!(dir.path().join("MARKER2").exists());
}
