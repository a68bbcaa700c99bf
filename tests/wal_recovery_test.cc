#define BOOST_TEST_MODULE wal_recovery_test
#include <boost/test/unit_test.hpp>
