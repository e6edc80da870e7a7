"""The sample project's tests (standard library only, so any python3 can run them)."""

import os
import unittest

from pricing import total


class TotalTest(unittest.TestCase):
    def test_adds_the_prices(self):
        self.assertEqual(total([1.25, 2.50]), 3.75)

    def test_takes_off_the_discount(self):
        self.assertEqual(total([10, 10], discount_percent=25), 15)

    def test_refuses_a_discount_over_one_hundred_percent(self):
        with self.assertRaises(ValueError):
            total([1], discount_percent=101)

    @unittest.skipUnless(os.environ.get("SAMPLE_SLOW"), "set SAMPLE_SLOW=1 to run")
    def test_many_prices_add_up(self):
        self.assertEqual(total([0.01] * 10_000), 100)

    def test_the_build_is_not_asked_to_fail(self):
        # Harbor passes build parameters as environment variables: `manage.py build
        # command-junit --param fail=yes ...` makes this test fail, to show a failing build.
        self.assertNotEqual(os.environ.get("HARBOR_BUILD_PARAM_FAIL"), "yes")
