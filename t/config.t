# SPDX-License-Identifier: Apache-2.0
# `httpd -t` refuses every bad directive value with a message naming the
# directive and the value, and accepts a good configuration.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use File::Temp qw(tempdir);
use lib 't/lib';
use HydraTest ();

my $dir = tempdir(CLEANUP => 1);

open my $fh, '>', "$dir/short.secret" or die;
print $fh "too-short\n";
close $fh;
open $fh, '>', "$dir/afile" or die;
print $fh "x";
close $fh;

my $good = HydraTest::good_inside();

# [directive lines, expected message] - each replaces or adds to $good
my @bad = (
    ['HydraSignupJWTAlgorithm XS512',
     qr/HydraSignupJWTAlgorithm: unknown algorithm 'XS512'/],
    ['HydraSignupJWTAlgorithm hs256',
     qr/HydraSignupJWTAlgorithm: unknown algorithm 'hs256'/],
    ['HydraSignupJWTKeyFile /nonexistent/key.pem',
     qr{HydraSignupJWTKeyFile: cannot read /nonexistent/key\.pem}],
    ["HydraSignupJWTKeyFile $dir",
     qr{HydraSignupJWTKeyFile: \Q$dir\E is not a regular file}],
    ["HydraSignupJWTKeyFile $dir/short.secret",
     qr{HydraSignupJWTKeyFile \Q$dir\E/short\.secret: .*32}],
    ["HydraSignupCodeSecretFile $dir/short.secret",
     qr{HydraSignupCodeSecretFile: \Q$dir\E/short\.secret holds 9 bytes; the code secret needs at least 32}],
    ['HydraSignupCodeSecretFile /nonexistent',
     qr{HydraSignupCodeSecretFile: cannot read /nonexistent}],
    ['HydraSignupAccessTTL 0',
     qr/HydraSignupAccessTTL: '0' is not a positive whole number of seconds/],
    ['HydraSignupRefreshTTL -5',
     qr/HydraSignupRefreshTTL: '-5' is not a positive/],
    ['HydraSignupCodeTTL 10m',
     qr/HydraSignupCodeTTL: '10m' is not a positive/],
    ['HydraSignupPendingTTL 0', qr/HydraSignupPendingTTL: '0'/],
    ['HydraSignupResendInterval abc', qr/HydraSignupResendInterval: 'abc'/],
    ['HydraSignupMaxAttempts 0',
     qr/HydraSignupMaxAttempts: '0' is not a positive whole number/],
    ['HydraSignupMailsPerHour -1', qr/HydraSignupMailsPerHour: '-1'/],
    ['HydraSignupMaxBody 0', qr/HydraSignupMaxBody: '0' is not a number of bytes/],
    ['HydraSignupMaxBody 99999999', qr/HydraSignupMaxBody: '99999999'/],
    ['HydraSignupPlacement random',
     qr/HydraSignupPlacement: 'random' is neither spread nor fill/],
    ['HydraSignupRateLimit signup 0 60',
     qr/HydraSignupRateLimit: '0' is not a positive number of requests/],
    ['HydraSignupRateLimit login 5 60',
     qr/HydraSignupRateLimit: 'login' is not signup, verify or plans/],
    ['HydraSignupRateLimit verify 5 0',
     qr/HydraSignupRateLimit: '0' is not a window/],
    ['HydraSignupSpoolDir /nonexistent/spool',
     qr{HydraSignupSpoolDir: .*/nonexistent/spool}],
    ["HydraSignupSpoolDir $dir/afile",
     qr{HydraSignupSpoolDir: .*\Q$dir\E/afile.*not a directory}],
    ['HydraSignupMailFrom "Bad <no-at-sign>"', qr/HydraSignupMailFrom: /],
    ['HydraSignupCORSOrigins example.com',
     qr/HydraSignupCORSOrigins: 'example.com' is not an origin/],
    ['HydraSignupConcealExisting maybe', qr/HydraSignupConcealExisting/],
);

# required directives, each removed in turn from a vhost that serves tenants
my @required = qw(HydraSignupJWTKeyFile HydraSignupCodeSecretFile
                  HydraSignupSpoolDir HydraSignupMailFrom);

# HydraSignupRateLimitCache (server config): the module's own stores, no
# socache module loaded; the old syntax still passes
my @cache_good = ('shmcb', 'shmcb:/run/hydra-rl(1048576)',
                  'memcache:127.0.0.1:11211', 'memcache:127.0.0.1:11211,127.0.0.1');
my @cache_bad = (
    ['redis:127.0.0.1:6379', qr/HydraSignupRateLimitCache: 'redis:127.0.0.1:6379': the counters live in shmcb/],
    ['memcache:', qr/HydraSignupRateLimitCache: 'memcache:' names no server/],
    ['memcache:127.0.0.1:port', qr/HydraSignupRateLimitCache: '127.0.0.1:port' is not host:port/],
    ['shmcb:/x(10)', qr/HydraSignupRateLimitCache: 'shmcb:\/x\(10\)': the size in parentheses/],
);

plan tests => 2 + @bad + @required + @cache_good + @cache_bad;

sub httpd_t { HydraTest::httpd_t(dir => $dir, inside => $_[0]) }

my ($rc, $out) = httpd_t($good);
ok t_cmp($rc, 0, 'a good configuration passes httpd -t') or print "# $out";
ok t_cmp($out, qr/Syntax OK/, 'Syntax OK');

for my $case (@bad) {
    my ($line, $want) = @$case;
    my ($name) = $line =~ /^(\S+)/;
    my $body = join "\n", (grep { !/^\Q$name\E / } split /\n/, $good), $line;
    # the key file check needs the algorithm it is for
    ($rc, $out) = httpd_t($body);
    ok $rc != 0 && $out =~ $want or print "# [$line] rc=$rc: $out";
}
for my $name (@required) {
    my $body = join "\n", grep { !/^\Q$name\E / } split /\n/, $good;
    ($rc, $out) = httpd_t($body);
    ok $rc != 0 && $out =~ /\Q$name\E is required where HydraSignupTenants is set/
        or print "# [$name] rc=$rc: $out";
}
for my $v (@cache_good) {
    ($rc, $out) = HydraTest::httpd_t(dir => $dir,
        outside => "HydraSignupRateLimitCache $v");
    ok $rc == 0 && $out =~ /Syntax OK/ or print "# [$v] rc=$rc: $out";
}
for my $case (@cache_bad) {
    my ($v, $want) = @$case;
    ($rc, $out) = HydraTest::httpd_t(dir => $dir,
        outside => "HydraSignupRateLimitCache $v");
    ok $rc != 0 && $out =~ $want or print "# [$v] rc=$rc: $out";
}
