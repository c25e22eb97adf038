# SPDX-License-Identifier: Apache-2.0
# Byte-for-byte delivery, the envelope (recipient from To, sender from
# --from only), inotify pick-up, --from required, clean SIGTERM.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use MailerTest;

my $bin = mailer_bin();
my $help = `$bin --help`;
for my $o (qw(--spool --smtp --from --auth-file --starttls --dead-letter
    --once --max-age --retry-base --retry-max --lease --ca-file --insecure
    --verbose --connect-timeout --timeout --metrics)) {
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
# a spool message that names another envelope sender: ignored
push @m, queue_msg($dir, to => 'victim@example.com',
    from => 'Someone Else <attacker@evil.example>');

my $log = "$dir/mailer.log";
my $pid = start_mailer($log, '--spool', "$dir/spool", '--smtp', $url,
    '--starttls', 'off', '--max-age', '100000d', @FROM);
ok(wait_for(sub { received_files($sink->{maildir}) >= 5 }, 30),
    'five messages delivered');

my %want = map { $_->{msgid} => $_->{data} } @m;
my %got  = map { my $d = slurp($_); (msgid_of($d) => $d) }
    received_files($sink->{maildir});
for my $id (sort keys %want) {
    ok(defined $got{$id} && $got{$id} eq $want{$id},
        "$id arrived byte for byte");
}
ok(wait_for(sub { !spool_files($dir, 'new') && !spool_files($dir, 'cur') }, 10),
    'spool empty after delivery');

my $env = envelopes($sink);
is(scalar @$env, 5, 'five envelopes');
is_deeply([ sort map { join(',', @{ $_->{rcpt_tos} }) } @$env ],
    [ sort qw(plain@example.com jane.doe+tag@Example.ORG name@example.net
        bare@example.com victim@example.com) ],
    'one recipient each, parsed out of the To header (folded, quoted)');
is_deeply([ map { $_->{mail_from} } @$env ], [ ('bounce@hydra.test') x 5 ],
    'envelope sender is --from for every message');
my ($evil) = grep { $_->{rcpt_tos}[0] eq 'victim@example.com' } @$env;
is($evil && $evil->{mail_from}, 'bounce@hydra.test',
    "a message whose From names another sender still goes out as --from");
unlike(slurp($sink->{envlog}), qr/noreply\@hydra\.test|attacker\@evil/,
    "the spool's From never becomes the envelope sender");

# a new message arrives while the sender waits (inotify): delivered. How
# fast is a benchmark figure, not an assertion.
my $t0 = time();
my $late = queue_msg($dir, to => 'late@example.com');
ok(wait_for(sub { received_ids($sink->{maildir})->{ $late->{msgid} } }, 30),
    'message queued later delivered');
diag(sprintf('benchmark: a message queued while the sender waits arrived '
    . '%.3f s later', time() - $t0));

is(stop_proc($pid, 'TERM', 10) >> 8, 0, 'SIGTERM: exit 0');
my $l = slurp($log);
like($l, qr/^\d{4}-\d\d-\d\dT\S+Z INFO delivered \S+ to example\.org /m,
    'log line: timestamp, level, name, recipient domain');
unlike($l, qr/jane\.doe|123456|verification code|bounce\@/i,
    'log holds neither addresses nor body');

# --from is required: without it the sender refuses to start
queue_msg($dir, to => 'nofrom@example.com');
my ($rc0, $log0) = run_mailer(20, "$dir/nofrom.log", '--spool', "$dir/spool",
    '--smtp', $url, '--starttls', 'off', '--once');
is($rc0, 2, 'no --from: exit 2');
like($log0, qr/--from ADDR is required/, '... with a clear message');
is(scalar(spool_files($dir, 'new')), 1, '... and the message still queued');
my ($rc1, $log1) = run_mailer(20, "$dir/badfrom.log", '--spool',
    "$dir/spool", '--smtp', $url, '--starttls', 'off', '--once', '--from',
    'a@b, c@d');
is($rc1, 2, '--from with two addresses: exit 2');
like($log1, qr/--from: not one usable address/, '... says why');

# HYDRA_SMTP_URL stands in for --smtp
{
    local $ENV{HYDRA_SMTP_URL} = $url;
    my ($rc2) = run_mailer(20, "$dir/env.log", '--spool', "$dir/spool",
        '--starttls', 'off', '--once', @FROM);
    is($rc2, 0, 'HYDRA_SMTP_URL used when --smtp is absent');
}
is(scalar(spool_files($dir, 'new')), 0, '... and the message delivered');
my ($rc3) = run_mailer(5, "$dir/bad.log", '--spool', "$dir/spool",
    '--smtp', 'http://x', '--once', @FROM);
is($rc3, 2, 'bad URL: exit 2');

# --version: the version configure gave the build
my $ver = `$bin --version`;
my ($ac) = (slurp("$FindBin::Bin/../../configure.ac") // '')
    =~ /AC_INIT\(\[[^\]]*\],\s*\[([^\]]+)\]/;
ok(defined $ac, "configure.ac's version found");
$ac //= 'none found';
like($ver, qr/^hydra-signup-mailer \Q$ac\E \(libcurl/,
    "--version prints configure.ac's version ($ac)");

stop_proc($sink->{pid});
done_testing();
