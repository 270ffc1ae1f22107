# Derivations for nsh's benchmarks. No nixpkgs on the lab machines: the builder is the host's
# /bin/sh with coreutils from /usr/bin, which the nodes share. `nonce` makes each run build afresh;
# `cluster = false` drops the `nsh` feature, for Nix's own build-remote (node1 lacks that feature).
{ nonce ? "0", cluster ? true }:
let
  mk = name: script: extra: derivation ({
    inherit name nonce;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = "/usr/bin:/bin";
  } // (if cluster then { requiredSystemFeatures = [ "nsh" ]; } else { }) // extra);

  inFlight = n: builtins.genList
    (i: mk "nsh-bench-flight${toString n}-${toString i}" "sleep 10; hostname > $out" {
      extraSlurmParams = builtins.toJSON { cpus_per_task = 1; };
    })
    n;
  sleeper = seconds: mk "nsh-bench-sleep${toString seconds}" "sleep ${toString seconds}; hostname > $out" { };

  # 200 MiB that does not compress, built locally (no nsh feature) and without the nonce, so
  # that one build serves every copy variant of a run.
  big = derivation {
    name = "nsh-bench-200mib";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "head -c 209715200 /dev/urandom > $out" ];
    PATH = "/usr/bin:/bin";
  };
in
{
  trivial = mk "nsh-bench-trivial" "hostname > $out" { };
  sleep1 = sleeper 1;
  sleep60 = sleeper 60;

  # Independent 2 s jobs of one CPU each: node1's 4 CPUs run 4 at a time.
  queue = builtins.genList
    (i: mk "nsh-bench-queue-${toString i}" "sleep 2; hostname > $out" {
      extraSlurmParams = builtins.toJSON { cpus_per_task = 1; };
    })
    20;

  # n builds in flight at once (bench/polling.mjs): 10 s jobs of one CPU each, 4 run at a time.
  flight1 = inFlight 1;
  flight5 = inFlight 5;
  flight20 = inFlight 20;

  inherit big;
  # Its only input is `big`; the output holds a byte count, so it does not refer to `big`.
  useBig = mk "nsh-bench-use-200mib" "wc -c < ${big} > $out" { };

  # One line every 100 ms for 5 s, each stamped with the node's clock in nanoseconds.
  ticker = mk "nsh-bench-ticker" ''
    i=0
    while [ $i -lt 50 ]; do echo "nsh-tick $i $(date +%s%N)"; sleep 0.1; i=$((i + 1)); done
    echo ticked > $out
  '' { };
}
