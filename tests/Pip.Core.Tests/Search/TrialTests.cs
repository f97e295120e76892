using System.Text.Json;
using Pip.Search;

namespace Pip.Tests.Search;

public class TrialTests
{
    private static readonly ParameterAssignment P = SearchSpaceTests.Assign(("x", 1));

    [Fact]
    public void Json_CompletedAndFailed_RoundTrip()
    {
        Trial[] trials =
        [
            Trial.Completed(0, P, 0.25, TimeSpan.FromMilliseconds(12)),
            Trial.Completed(1, P, double.PositiveInfinity),
            Trial.Failed(2, P, "InvalidOperationException: out of memory"),
        ];

        string json = JsonSerializer.Serialize(trials);
        Trial[] back = JsonSerializer.Deserialize<Trial[]>(json)!;

        json.Should().Contain("\"Status\":\"Completed\"").And.Contain("\"Status\":\"Failed\"").And.Contain("\"Infinity\"");
        back.Should().Equal(trials);
        back[2].HasValue.Should().BeFalse();
        back[2].Value.Should().BeNull();
    }

    [Fact]
    public void Completed_NaN_Throws()
    {
        FluentActions.Invoking(() => Trial.Completed(0, P, double.NaN)).Should().Throw<ArgumentOutOfRangeException>();
    }

    [Fact]
    public void BestAndBestSoFar_SkipFailedAndKeepEarliestOfEquals()
    {
        Trial[] trials =
        [
            Trial.Failed(0, P, "boom"),
            Trial.Completed(1, P, 3),
            Trial.Completed(2, P, 5),
            Trial.Completed(3, P, 1),
            Trial.Failed(4, P, "boom"),
            Trial.Completed(5, P, 1),
        ];

        Trial.Best(trials)!.Number.Should().Be(3);
        Trial.BestSoFar(trials).Should().Equal(double.NaN, 3, 3, 1, 1, 1);
        Trial.Best([Trial.Failed(0, P, "boom")]).Should().BeNull();
    }
}
