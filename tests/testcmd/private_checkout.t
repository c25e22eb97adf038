#!/usr/bin/perl
# SPDX-License-Identifier: Apache-2.0
# The test command from a checkout that the unprivileged test user cannot
# read (issue 9, item 0: a clone in root's home, mode 0700): as root,
# scripts/test.sh must still start PostgreSQL, build and run a test file,
# and end with "N passed, 0 failed". Run by scripts/test.sh as root (part
# "testcmd") with HYDRA_CHECKOUT naming the checkout it was started from.
use strict;
use warnings;
use File::Temp qw(tempdir);
use Test::More;

$> == 0 or plan skip_all => 'needs root (scripts/test.sh runs it as root)';
my $src = $ENV{HYDRA_CHECKOUT} // $ENV{HYDRA_SRC}
    or BAIL_OUT('HYDRA_CHECKOUT is not set');
my $user = $ENV{HYDRA_TEST_USER} // 'hydratest';
plan tests => 5;

# a private folder, as root's home is: mode 0700, owned by root
my $home = tempdir('hydra-private.XXXXXX', TMPDIR => 1, CLEANUP => 1);
chmod 0700, $home or die "chmod $home: $!";
my $clone = "$home/mod_hydra_signup";
mkdir $clone or die "mkdir $clone: $!";
my $copy = system('bash', '-c',
    'set -o pipefail; cd "$1" && { git ls-files -co --exclude-standard -z 2>/dev/null'
    . ' || find . -type f -print0; } | tar --null -T - -cf - | tar -C "$2" -xf -',
    'copy', $src, $clone);
is($copy, 0, 'the checkout copied into a 0700 folder');
isnt(system('runuser', '-u', $user, '--', 'test', '-r', "$clone/scripts/lib/pg.sh"), 0,
     "$user cannot read the checkout (as in root's home)");

# one Apache::Test file: build, PostgreSQL, httpd, the summary line
my $out = `cd '$clone' && HYDRA_TEST_PG_PORT= HYDRA_PARTS=apache scripts/test.sh t/plans.t 2>&1`;
my $rc = $? >> 8;
is($rc, 0, 'scripts/test.sh t/plans.t from there: exit 0')
    or diag(join "\n", (split /\n/, $out)[-30 .. -1]);
unlike($out, qr/PostgreSQL did not start/, 'PostgreSQL started');
my ($last) = $out =~ /^(\d+ passed, \d+ failed(?:, \d+ skipped)?)\s*\z/m;
like($last // '(no summary line)', qr/^[1-9]\d* passed, 0 failed/,
     'it ends with "N passed, 0 failed"');
