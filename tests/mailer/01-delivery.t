# SPDX-License-Identifier: Apache-2.0
# Byte-for-byte delivery, envelope, inotify latency, --from, clean SIGTERM.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use MailerTest;

my $bin = mailer_bin();
my $help = `$bin --help`;
for my $o (qw(--spool --smtp --from --auth-file --starttls --dead-letter
    --once --max-age --retry-base --retry-max --lease --ca-file --insecure
    --verbose --connect-timeout --timeout)) {
    like($help, qr/\Q$o\E\b/, "--help documents $o");
}

my $dir  = new_spool();
my $sink = start_sink($dir);
my $url  = "smtp://127.0.0.1:$sink->{port}";

my @m;
push @m, queue_msg($dir, to => 'plain@example.com');
push @m, queue_msg($dir, to => "\"Doe, Jane\" (comment)\r\n <jane.doe+tag\@Example.ORG>",
    body => ".leading dot\r\n..two dots\r\n.\r\nA line with trailing space \r\n"
    . "=C3=A9t=C3=A9 123456\r\n" . ('x' x 990) . "\r\n");
push @m, queue_msg($dir, to => 'Name <name@example.net>',
    extra_headers => "X-Long: " . join(' ', ('word') x 30) . "\r\n\tfolded\r\n",
    body => "no final CRLF in the last line?\r\nyes it has\r\n");
push @m, queue_msg($dir, to => 'bare@example.com', body => "\r\n\r\n\r\n");

my $log = "$dir/mailer.log";
my $pid = start_mailer($log, '--spool', "$dir/spool", '--smtp', $url,
    '--starttls', 'off', '--max-age', '100000d');
ok(wait_for(sub { received_files($sink->{maildir}) >= 4 }, 15),
    'four messages delivered');

my %want = map { $_->{msgid} => $_->{data} } @m;
my %got  = map { my $d = slurp($_); (msgid_of($d) => $d) }
    received_files($sink->{maildir});
for my $id (sort keys %want) {
    ok(defined $got{$id} && $got{$id} eq $want{$id},
        "$id arrived byte for byte");
}
is(scalar(spool_files($dir, 'new')) + scalar(spool_files($dir, 'cur')), 0,
    'spool empty after delivery');

my @env = map { /"rcpt_tos": \[([^\]]*)\]/ ? $1 : () }
    split /\n/, (slurp($sink->{envlog}) // '');
my $envs = join(' ', @env);
like($envs, qr/"jane\.doe\+tag\@Example\.ORG"/,
    'recipient parsed out of a folded quoted header');
like(slurp($sink->{envlog}), qr/"mail_from": "noreply\@hydra\.test"/,
    'envelope sender from the From header');

# a new message arrives while the sender waits: delivered within ~1 s
sleep 0.3;
my $t0 = time();
my $late = queue_msg($dir, to => 'late@example.com');
ok(wait_for(sub { received_ids($sink->{maildir})->{ $late->{msgid} } }, 5),
    'message queued later delivered');
my $lat = time() - $t0;
cmp_ok($lat, '<', 1.5, sprintf('delivered %.3f s after it appeared', $lat));

is(stop_proc($pid, 'TERM', 10) >> 8, 0, 'SIGTERM: exit 0');
my $l = slurp($log);
like($l, qr/^\d{4}-\d\d-\d\dT\S+Z INFO delivered \S+ to example\.org /m,
    'log line: timestamp, level, name, recipient domain');
unlike($l, qr/jane\.doe|123456|verification code/i,
    'log holds neither addresses nor body');

# --from overrides the envelope sender
my $x = queue_msg($dir, to => 'from-test@example.com');
my ($rc) = run_mailer(20, "$dir/once.log", '--spool', "$dir/spool",
    '--smtp', $url, '--starttls', 'off', '--once', '--from',
    'Bounces <bounce@hydra.test>', '--max-age', '100000d');
is($rc, 0, '--once exit 0');
like(slurp($sink->{envlog}), qr/"mail_from": "bounce\@hydra\.test"/,
    '--from sets MAIL FROM');

# HYDRA_SMTP_URL stands in for --smtp
queue_msg($dir, to => 'env@example.com');
{
    local $ENV{HYDRA_SMTP_URL} = $url;
    my ($rc2) = run_mailer(20, "$dir/env.log", '--spool', "$dir/spool",
        '--starttls', 'off', '--once');
    is($rc2, 0, 'HYDRA_SMTP_URL used when --smtp is absent');
}
my ($rc3) = run_mailer(5, "$dir/bad.log", '--spool', "$dir/spool",
    '--smtp', 'http://x', '--once');
is($rc3, 2, 'bad URL: exit 2');

stop_proc($sink->{pid});
done_testing();
