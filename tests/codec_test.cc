#define BOOST_TEST_MODULE codec_test
#include <boost/test/unit_test.hpp>
