# SPDX-License-Identifier: Apache-2.0
# `httpd -t` for the directives of the capacity work: HydraSignupReapInterval
# and HydraSignupDBConnections (server level), HydraSignupPlansCacheTTL
# (anywhere). Good values pass, bad ones are refused with a message that
# names the directive and the value.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok);
use Apache::TestUtil qw(t_cmp);
use File::Temp qw(tempdir);
use lib 't/lib';
use HydraTest ();

my $dir = tempdir(CLEANUP => 1);
my $inside = HydraTest::good_inside();

# [server-level lines, Location lines, expected: undef = accepted]
my @cases = (
    ['HydraSignupReapInterval 5', '', undef],
    ['HydraSignupReapInterval Off', '', undef],
    ['HydraSignupReapInterval 0', '',
     qr/HydraSignupReapInterval: '0' is neither Off nor 1 to 3600 seconds/],
    ['HydraSignupReapInterval 5s', '',
     qr/HydraSignupReapInterval: '5s' is neither Off nor 1 to 3600 seconds/],
    ['', 'HydraSignupReapInterval 5', qr/HydraSignupReapInterval .*not allowed/],
    ['HydraSignupDBConnections 8', '', undef],
    ['HydraSignupDBConnections 8 250', '', undef],
    ['HydraSignupDBConnections 0', '',
     qr/HydraSignupDBConnections: '0' is not a positive number of connections/],
    ['HydraSignupDBConnections 8 soon', '',
     qr/HydraSignupDBConnections: 'soon' is not a wait of 1 to 600000 ms/],
    ['', 'HydraSignupDBConnections 8', qr/HydraSignupDBConnections .*not allowed/],
    ['HydraSignupPlansCacheTTL 30', 'HydraSignupPlansCacheTTL Off', undef],
    ['', 'HydraSignupPlansCacheTTL -1',
     qr/HydraSignupPlansCacheTTL: '-1' is neither Off nor 1 to 3600 seconds/],
    ['', 'HydraSignupPlansCacheTTL 3601',
     qr/HydraSignupPlansCacheTTL: '3601' is neither Off nor 1 to 3600 seconds/],
);

plan tests => scalar @cases;

for my $case (@cases) {
    my ($outside, $loc, $want) = @$case;
    my ($rc, $out) = HydraTest::httpd_t(dir => $dir, outside => $outside,
                                        inside => "$inside$loc");
    if (defined $want) {
        ok $rc != 0 && $out =~ $want or print "# [$outside|$loc] rc=$rc: $out";
    }
    else {
        ok $rc == 0 or print "# [$outside|$loc] rc=$rc: $out";
    }
}
