#define BOOST_TEST_MODULE tools_test
#include <boost/test/unit_test.hpp>
