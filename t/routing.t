# SPDX-License-Identifier: Apache-2.0
# Routing inside the handler: methods, sub-paths, JSON errors.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(plan ok have_lwp);
use Apache::TestUtil qw(t_cmp);
use Apache::TestRequest qw(GET POST);
use HTTP::Request ();
use lib 't/lib';
use HydraTest qw(get_json);

plan tests => 18, have_lwp;

# any method, through the harness's user agent
sub req {
    my ($method, $url) = @_;
    my $hp = Apache::TestRequest::hostport();
    return Apache::TestRequest::user_agent()
        ->request(HTTP::Request->new($method => "http://$hp$url"));
}

my $b = '/v1/public/signup';

for my $case (['GET', $b, 'POST, OPTIONS'],
              ['GET', "$b/verify", 'POST, OPTIONS'],
              ['POST', "$b/plans/demo", 'GET, HEAD, OPTIONS'],
              ['DELETE', "$b/plans/demo", 'GET, HEAD, OPTIONS']) {
    my ($m, $url, $allow) = @$case;
    my $res = $m eq 'GET' ? GET($url) : $m eq 'POST' ? POST($url, content => '{}')
            : req($m, $url);
    ok t_cmp($res->code, 405, "$m $url: 405");
    ok t_cmp(scalar $res->header('Allow'), $allow, "$m $url: Allow");
}
my $res = GET $b;
ok t_cmp($res->content, '{"detail":"Method Not Allowed"}', '405 body is JSON');

for my $url ("$b/nope", "$b/plans/", "$b/plans/demo/extra", "$b/verify/x",
             "$b/plansdemo") {
    $res = GET $url;
    ok t_cmp($res->code . ' ' . $res->content, '404 {"detail":"Not Found"}',
             "unknown sub-path $url: JSON 404");
}
# HEAD on a GET route
$res = Apache::TestRequest::HEAD("$b/plans/demo");
ok t_cmp($res->code, 200, 'HEAD plans: 200');
ok t_cmp($res->content, '', 'HEAD: no body');
$res = req('OPTIONS', "$b/plans/demo");
ok t_cmp($res->code, 204, 'OPTIONS: 204');
ok t_cmp(scalar $res->header('Allow'), 'GET, HEAD, OPTIONS', 'OPTIONS: Allow');
