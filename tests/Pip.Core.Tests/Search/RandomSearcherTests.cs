using Pip.Search;

namespace Pip.Tests.Search;

public class RandomSearcherTests
{
    private static readonly SearchSpace LogSpace = new(
        SearchParameter.Float("lr", 1e-5, 1e-1, log: true),
        SearchParameter.Integer("rank", 1, 1000, log: true),
        SearchParameter.Integer("k", -3, 3),
        SearchParameter.Categorical("data", "wikitext", "c4"));

    [Fact]
    public void Suggest_LogScaled_IsUniformInLogSpaceAndWithinBounds()
    {
        var searcher = new RandomSearcher(LogSpace, new RandomSearcherOptions { Seed = 3 });
        var lr = new List<double>();
        var rank = new List<int>();
        var k = new List<int>();
        var history = new List<Trial>();
        for (int i = 0; i < 4000; i++)
        {
            ParameterAssignment p = searcher.Suggest(history);
            LogSpace.Contains(p).Should().BeTrue();
            lr.Add(p.GetDouble("lr"));
            rank.Add(p.GetInt32("rank"));
            k.Add(p.GetInt32("k"));
            history.Add(Trial.Completed(i, p, 0));
        }

        // Log-uniform: half of the draws below the geometric midpoint 1e-3 (a uniform draw would put 1% there).
        lr.Count(x => x < 1e-3).Should().BeInRange(1800, 2200);
        // Log-uniform over the cells [0.5, 1000.5]: P(rank <= 31) = ln(31.5 / 0.5) / ln(1000.5 / 0.5) = 0.545.
        rank.Count(x => x <= 31).Should().BeInRange(2000, 2360);
        rank.Should().Contain(1).And.Contain(x => x > 900);
        k.Distinct().Order().Should().Equal(-3, -2, -1, 0, 1, 2, 3);
    }

    [Fact]
    public void Suggest_SameSeedAndHistory_SameAssignment()
    {
        var a = new RandomSearcher(LogSpace, new RandomSearcherOptions { Seed = 11 });
        var b = new RandomSearcher(LogSpace, new RandomSearcherOptions { Seed = 11 });
        var c = new RandomSearcher(LogSpace, new RandomSearcherOptions { Seed = 12 });

        a.Suggest([]).Should().Equal(b.Suggest([]));
        a.Suggest([]).Should().Equal(a.Suggest([]), "the suggestion depends on the history, not on earlier calls");
        a.Suggest([]).Should().NotEqual(c.Suggest([]));
        a.Suggest([Trial.Completed(0, a.Suggest([]), 1)]).Should().NotEqual(a.Suggest([]));
    }
}
