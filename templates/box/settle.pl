#!/usr/bin/perl
# clusterlab-settle: after `clusterlab reset` has loaded a VM snapshot, sets
# this guest's clock to the host's and turns PostgreSQL's replication timeouts
# back on, at the host's word. Installed in libvirt boxes by clusterlab's box
# builder, started at boot.
#
# Why a resident process on a TCP port: right after `loadvm` the guest answers
# TCP within 0.1-0.3 s, while the QEMU guest agent takes 0.5-1 s to come back
# and every command it runs is a fork and exec (0.3-0.7 s on a guest under
# emulation that is warming up). This one was already running when the
# snapshot was taken: it does its work in-process.
#
# One request per connection, one line: "PASSWORD clock SECONDS.NANOSECONDS"
# or "PASSWORD timeouts-on"; the answer is "ok" or "error: WHY".
# PASSWORD is the cluster's lab password (/etc/clusterlab/lab.password, put
# there by provisioning); the data directory is read from
# /etc/clusterlab/data-directory, the names of the timeouts from
# /etc/clusterlab/timeout-settings (see timeouts_on). Until provisioning has
# written the password and the data directory, every request is refused.
use strict;
use warnings;
use IO::Socket::INET;

# Arguments (for tests): the address to listen on, and the directory that
# holds the password and the data directory's path.
my $listen = $ARGV[0] // '0.0.0.0:7432';
my $etc = $ARGV[1] // '/etc/clusterlab';

my $server = IO::Socket::INET->new(LocalAddr => $listen, Listen => 8, ReuseAddr => 1, Proto => 'tcp')
  or die "clusterlab-settle: cannot listen on $listen: $!\n";
# clock_settime(2) by number: no fork and exec of date(1) on the hot path.
my $settime = eval { require 'syscall.ph'; &SYS_clock_settime() };

sub slurp {
    my ($file) = @_;
    open(my $fh, '<', $file) or die "cannot read $file: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;
    return $text;
}

sub set_clock {
    my ($arg) = @_;
    my ($sec, $nsec) = ($arg // '') =~ /^(\d+)\.(\d{9})$/ or die "clock wants SECONDS.NANOSECONDS\n";
    if (defined $settime) {
        # CLOCK_REALTIME is 0; struct timespec is two 64-bit fields on x86_64.
        syscall($settime, 0, pack('q q', $sec, $nsec)) == 0 or die "clock_settime: $!\n";
    } else {
        system('/bin/date', '-u', '-s', "\@$sec.$nsec") == 0 or die "date -s failed\n";
    }
}

# What `clusterlab-pg timeouts on` does: drop the lines the snapshot was taken
# with from postgresql.auto.conf (RESET brings back postgresql.conf's values)
# and have the postmaster reload. Which settings those are, clusterlab-pg
# alone spells: `timeouts off` writes their names, one a line, to
# /etc/clusterlab/timeout-settings before the snapshot is taken, so the
# snapshot carries the list this reads (a file, not a call of clusterlab-pg:
# no fork and exec on this path).
sub timeouts_on {
    chomp(my $data = slurp("$etc/data-directory"));
    my @names = grep { /^\w+$/ } split /\n/, slurp("$etc/timeout-settings");
    die "no setting names in $etc/timeout-settings\n" unless @names;
    my $which = join '|', @names;
    my $auto = "$data/postgresql.auto.conf";
    my @kept = grep { !/^(?:$which) / } split /^/, slurp($auto);
    my ($mode, $uid, $gid) = (stat $auto)[2, 4, 5];
    open(my $out, '>', "$auto.clusterlab") or die "cannot write $auto.clusterlab: $!\n";
    print $out @kept;
    close $out or die "cannot write $auto.clusterlab: $!\n";
    chown $uid, $gid, "$auto.clusterlab";
    chmod $mode & 07777, "$auto.clusterlab";
    rename "$auto.clusterlab", $auto or die "cannot replace $auto: $!\n";
    my ($pid) = slurp("$data/postmaster.pid") =~ /^(\d+)/ or die "no postmaster pid in $data\n";
    kill('HUP', $pid) or die "cannot signal the postmaster ($pid): $!\n";
}

sub handle {
    my ($line) = @_;
    my ($password, $command, $arg) = split / /, $line, 3;
    chomp(my $expected = slurp("$etc/lab.password"));
    die "wrong password\n" unless length $expected && defined $password && $password eq $expected;
    if ($command eq 'clock') { set_clock($arg) }
    elsif ($command eq 'timeouts-on') { timeouts_on() }
    else { die "unknown command\n" }
}

while (my $client = $server->accept) {
    $client->autoflush(1);
    # A client that sends nothing must not hold the only thread.
    my $line = eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 5;
        my $l = <$client>;
        alarm 0;
        $l;
    };
    if (defined $line) {
        $line =~ s/\r?\n\z//;
        my $ok = eval { handle($line); 1 };
        my $why = $@ || 'failed';
        chomp $why;
        print $client $ok ? "ok\n" : "error: $why\n";
    }
    close $client;
}
