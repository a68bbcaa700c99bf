// Goal: the networked seams (TCP peer transport, client listener). Placeholder, being written.
#define BOOST_TEST_MODULE tcp_transport_test
#include <boost/test/unit_test.hpp>
BOOST_AUTO_TEST_CASE(placeholder) {}
