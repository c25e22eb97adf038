# --metrics FILE: the counters move by exactly what a scripted mix does
# (N delivered at once, M deferred once then delivered, K refused for good),
# the gauges show the queue, the file is replaced atomically while the
# sender runs and at exit, and Prometheus' own parser
# (python3-prometheus-client) reads it.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP qw(decode_json);
use MailerTest;

my ($N, $M, $K) = (5, 3, 2);

# name => value of every sample, and name => type of every family, as the
# Prometheus client library's text parser sees the file (undef: it failed)
sub parse_metrics {
    my ($file) = @_;
    my $py = <<'PY';
import json, sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1], encoding="utf-8").read()
out = {"samples": {}, "types": {}}
for fam in text_string_to_metric_families(text):
    out["types"][fam.name] = fam.type
    for s in fam.samples:
        out["samples"][s.name] = s.value
print(json.dumps(out))
PY
    open(my $ph, '-|', '/usr/bin/python3', '-c', $py, $file) or return undef;
    local $/;
    my $json = <$ph>;
    close $ph or return undef;
    return decode_json($json);
}

sub value {
    my ($file, $name) = @_;
    my $text = slurp($file) // return undef;
    return $text =~ /^\Q$name\E (\S+)$/m ? $1 : undef;
}

my $P = 'hydra_signup_mailer_';
my $dir  = new_spool();
my $sink = start_sink($dir, args => ['--fail-first', $M, '--fail-code', 451,
    '--reject-rcpt-pattern', '^perm', '--reject-code', 550]);
# queued in this order, sent in this order: the first M to reach DATA are
# the temp ones, so they take the M injected 451s
my @temp = map { queue_msg($dir, to => "temp$_\@example.com") } 1 .. $M;
my @perm = map { queue_msg($dir, to => "perm$_\@example.com") } 1 .. $K;
my @good = map { queue_msg($dir, to => "good$_\@example.com") } 1 .. $N;
mkdir "$dir/metrics" or die;
my $prom = "$dir/metrics/mailer.prom";

my $pid = start_mailer("$dir/daemon.log", '--spool', "$dir/spool", '--smtp',
    "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off', '--retry-base', 1,
    '--retry-max', 1, '--metrics', $prom, @FROM);
# while it runs, the file is rewritten: wait for the final figures in it
ok(wait_for(sub {
    (value($prom, "${P}messages_delivered_total") // -1) == $N + $M
        && (value($prom, "${P}messages_dead_total") // -1) == $K
        && (value($prom, "${P}queue_messages") // -1) == 0 }, 60),
    'the running sender rewrote the file up to the final figures');
my $live = parse_metrics($prom);
ok($live, 'the file parses with prometheus_client while the sender runs');
is(stop_proc($pid, 'TERM', 10) >> 8, 0, 'SIGTERM: exit 0');

my $m = parse_metrics($prom);
ok($m, 'the file written at exit parses with prometheus_client');
my %s = %{ $m ? $m->{samples} : {} };
is($s{"${P}messages_delivered_total"}, $N + $M, "delivered: exactly N+M = @{[$N + $M]}");
is($s{"${P}messages_deferred_total"}, $M, "deferred: exactly M = $M");
is($s{"${P}messages_dead_total"}, $K, "dead: exactly K = $K");
is($s{"${P}queue_messages"}, 0, 'queue depth 0');
is($s{"${P}oldest_message_age_seconds"}, 0, 'oldest age 0 when empty');
ok(($s{"${P}start_time_seconds"} // 0) > time() - 600, 'start time');
my %t = %{ $m ? $m->{types} : {} };
is($t{"${P}messages_delivered"}, 'counter', 'delivered is a counter');
is($t{"${P}messages_deferred"}, 'counter', 'deferred is a counter');
is($t{"${P}messages_dead"}, 'counter', 'dead is a counter');
is($t{"${P}queue_messages"}, 'gauge', 'queue depth is a gauge');
is($t{"${P}oldest_message_age_seconds"}, 'gauge', 'oldest age is a gauge');

# the figures agree with what really happened
is(scalar(received_files($sink->{maildir})), $N + $M, 'the sink holds N+M messages');
is(scalar(grep { !/\.reason$/ } spool_files($dir, 'dead')), $K, 'dead/ holds K');
my $log = slurp("$dir/daemon.log");
my %deferred = map { $_ => 1 } $log =~ /WARN temporary failure for (\S+) /g;
is_deeply([ sort keys %deferred ], [ sort map { $_->{name} } @temp ],
    'the deferred ones were the temp messages');
is_deeply([ glob("$dir/metrics/* $dir/metrics/.*[!.]") ], [$prom],
    'no temporary file left beside it');
is((stat $prom)[2] & 07777, 0644, 'mode 0644 (node_exporter can read it)');

# the gauges: two messages waiting for a retry an hour away, queued 10
# minutes ago; --once leaves them alone and reports them
my $dir2 = new_spool();
my $now = time();
for my $i (1, 2) {
    my $q = queue_msg($dir2, to => "wait$i\@example.com", time => $now - 600);
    rename("$dir2/spool/new/$q->{name}",
        "$dir2/spool/new/$q->{name},r=1,t=" . ($now + 3600)) or die;
}
mkdir "$dir2/metrics" or die;
my ($rc) = run_mailer(30, "$dir2/once.log", '--spool', "$dir2/spool",
    '--smtp', "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off', '--once',
    '--metrics', "$dir2/metrics/mailer.prom", @FROM);
is($rc, 0, '--once with nothing due: exit 0');
my $w = parse_metrics("$dir2/metrics/mailer.prom");
my %w = %{ $w ? $w->{samples} : {} };
is($w{"${P}queue_messages"}, 2, 'queue depth 2');
my $age = $w{"${P}oldest_message_age_seconds"} // -1;
ok($age >= 600 && $age < 600 + 120, "oldest age about 600 s ($age)");
is($w{"${P}messages_delivered_total"}, 0, 'nothing delivered');
is($w{"${P}messages_deferred_total"}, 0, 'nothing deferred');

# an unusable --metrics path is a set-up error, found at start
my ($rc2, $log2) = run_mailer(30, "$dir2/bad.log", '--spool', "$dir2/spool",
    '--smtp', "smtp://127.0.0.1:$sink->{port}", '--starttls', 'off', '--once',
    '--metrics', "$dir2/no-such-dir/mailer.prom", @FROM);
is($rc2, 2, 'metrics file in a missing folder: exit 2');
like($log2, qr/--metrics \S+: cannot write it/, '... with a clear message');
stop_proc($sink->{pid});

# a server that holds the sender in DATA does not freeze the file: it is
# still rewritten while the transfer hangs, showing the message in cur/
my $dir3 = new_spool();
my $slow = start_sink($dir3, args => ['--hold-rcpt-pattern', '^slow',
    '--hold-seconds', 60]);
queue_msg($dir3, to => 'slow@example.com');
mkdir "$dir3/metrics" or die;
my $prom3 = "$dir3/metrics/mailer.prom";
my $pid3 = start_mailer("$dir3/daemon.log", '--spool', "$dir3/spool",
    '--smtp', "smtp://127.0.0.1:$slow->{port}", '--starttls', 'off',
    '--metrics', $prom3, @FROM);
ok(wait_for(sub { (slurp($slow->{events}) // '') =~ /^held slow\@/m }, 30),
    'the sender is held in DATA');
my $ino = (stat $prom3)[1] // 0;
ok(wait_for(sub { my $i = (stat $prom3)[1]; defined $i && $i != $ino }, 20),
    'the file was replaced while the transfer hangs');
is(value($prom3, "${P}queue_messages"), 1, '... counting the message in cur/');
stop_proc($pid3, 'KILL', 5);
stop_proc($slow->{pid});
done_testing();
