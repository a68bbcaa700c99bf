#define BOOST_TEST_MODULE posix_env_test
#include <boost/test/unit_test.hpp>
