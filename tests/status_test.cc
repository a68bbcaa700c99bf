#define BOOST_TEST_MODULE status_test
#include <boost/test/unit_test.hpp>
