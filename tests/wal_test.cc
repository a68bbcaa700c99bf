#define BOOST_TEST_MODULE wal_test
#include <boost/test/unit_test.hpp>
