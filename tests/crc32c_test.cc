#define BOOST_TEST_MODULE crc32c_test
#include <boost/test/unit_test.hpp>
