using Microsoft.Extensions.Options;
using Pip.Search;

namespace Pip.Tests.Search;

public class TpeSearcherTests
{
    [Fact]
    public async Task Suggest_QuadraticWithCategory_ConvergesNearOptimumWithin100Trials()
    {
        for (int seed = 0; seed < 5; seed++)
        {
            SearchResult result = await SearchProblems.RunAsync(
                new TpeSearcher(SearchProblems.QuadraticSpace, new TpeSearcherOptions { Seed = seed }), SearchProblems.Quadratic, 100);

            Trial best = result.Best!;
            best.Value.Should().BeLessThan(0.1, $"seed {seed}");
            best.Parameters.GetString("calibration").Should().Be("wikitext");
            best.Parameters.GetDouble("x").Should().BeApproximately(1.3, 0.32);
            best.Parameters.GetDouble("y").Should().BeApproximately(-0.7, 0.32);
        }
    }

    [Fact]
    public void Suggest_QuadraticWithCategory_ReachesThresholdInFewerTrialsThanRandom()
    {
        // Random search reaches 0.5 with probability 1/4 · π·0.5/100 ≈ 0.4% a trial (median ≈ 177 trials).
        const double Threshold = 0.5;
        const int Budget = 200;
        var tpe = new List<int>();
        var random = new List<int>();
        for (int seed = 0; seed < 10; seed++)
        {
            tpe.Add(SearchProblems.TrialsToReach(
                new TpeSearcher(SearchProblems.QuadraticSpace, new TpeSearcherOptions { Seed = seed }), SearchProblems.Quadratic, Threshold, Budget));
            random.Add(SearchProblems.TrialsToReach(
                new RandomSearcher(SearchProblems.QuadraticSpace, new RandomSearcherOptions { Seed = seed }), SearchProblems.Quadratic, Threshold, Budget));
        }

        tpe.Should().OnlyContain(n => n <= Budget, "TPE reaches the threshold for every seed");
        SearchProblems.Median(tpe).Should().BeLessThan(SearchProblems.Median(random) / 2, $"TPE: {string.Join(",", tpe)}; random: {string.Join(",", random)}");
    }

    [Fact]
    public void Suggest_CategoricalGrid_FindsBestFasterThanRandomOnAverage()
    {
        // 125 combinations with one best: random search needs 125 trials on average.
        const int Budget = 150;
        var tpe = new List<int>();
        var random = new List<int>();
        for (int seed = 0; seed < 20; seed++)
        {
            tpe.Add(SearchProblems.TrialsToReach(
                new TpeSearcher(SearchProblems.GridSpace, new TpeSearcherOptions { Seed = seed }), SearchProblems.Grid, 0, Budget));
            random.Add(SearchProblems.TrialsToReach(
                new RandomSearcher(SearchProblems.GridSpace, new RandomSearcherOptions { Seed = seed }), SearchProblems.Grid, 0, Budget));
        }

        string detail = $"TPE: {string.Join(",", tpe)}; random: {string.Join(",", random)}";
        tpe.Average().Should().BeLessThan(0.6 * random.Average(), detail);
        SearchProblems.Median(tpe).Should().BeLessThan(0.6 * SearchProblems.Median(random), detail);
    }

    [Fact]
    public async Task Suggest_LogScaledParameters_StayInBoundsAndFindInteriorOptimum()
    {
        var space = new SearchSpace(
            SearchParameter.Float("lr", 1e-5, 1e-1, log: true),
            SearchParameter.Integer("rank", 1, 1000, log: true),
            SearchParameter.Integer("k", 1, 3, log: true));
        static double Objective(ParameterAssignment p) =>
            Math.Pow(Math.Log10(p.GetDouble("lr")) + 4, 2) + Math.Pow(Math.Log10(p.GetInt32("rank")) - 1.5, 2) + p.GetInt32("k");

        SearchResult result = await SearchProblems.RunAsync(new TpeSearcher(space, new TpeSearcherOptions { Seed = 5 }), Objective, 100);

        result.Trials.Should().OnlyContain(t => space.Contains(t.Parameters));
        result.Best!.Parameters.GetDouble("lr").Should().BeInRange(0.8e-4, 1.25e-4);
        result.Best.Parameters.GetInt32("rank").Should().BeInRange(25, 40);
        result.Best.Parameters.GetInt32("k").Should().Be(1);
    }

    [Fact]
    public async Task Suggest_OptimumAtTheBounds_StaysInBounds()
    {
        var space = new SearchSpace(
            SearchParameter.Float("lr", 1e-5, 1e-1, log: true),
            SearchParameter.Integer("rank", 1, 1000, log: true),
            SearchParameter.Float("w", -1, 1));
        static double Objective(ParameterAssignment p) => Math.Log10(p.GetDouble("lr")) - Math.Log10(p.GetInt32("rank")) - p.GetDouble("w");

        SearchResult result = await SearchProblems.RunAsync(new TpeSearcher(space, new TpeSearcherOptions { Seed = 2 }), Objective, 120);

        result.Trials.Should().OnlyContain(t => space.Contains(t.Parameters));
        result.Best!.Parameters.GetDouble("lr").Should().BeLessThan(2e-5);
        result.Best.Parameters.GetInt32("rank").Should().BeGreaterThan(500);
        result.Best.Parameters.GetDouble("w").Should().BeGreaterThan(0.9);
    }

    [Fact]
    public async Task Suggest_SameSeed_SameTrials_OtherSeed_OtherTrials()
    {
        Task<SearchResult> Run(int seed) =>
            SearchProblems.RunAsync(new TpeSearcher(SearchProblems.QuadraticSpace, new TpeSearcherOptions { Seed = seed }), SearchProblems.Quadratic, 30);

        SearchResult a = await Run(4);
        SearchResult b = await Run(4);
        SearchResult c = await Run(5);

        a.Trials.Select(t => t.Parameters).Should().Equal(b.Trials.Select(t => t.Parameters));
        a.Trials.Select(t => t.Value).Should().Equal(b.Trials.Select(t => t.Value));
        a.Trials.Skip(10).Select(t => t.Parameters).Should().NotIntersectWith(c.Trials.Select(t => t.Parameters));
    }

    [Fact]
    public async Task Suggest_StartupTrials_AreTheRandomSearchersWithTheSameSeed()
    {
        SearchResult tpe = await SearchProblems.RunAsync(
            new TpeSearcher(SearchProblems.QuadraticSpace, new TpeSearcherOptions { Seed = 9, StartupTrials = 7 }), SearchProblems.Quadratic, 9);
        SearchResult random = await SearchProblems.RunAsync(
            new RandomSearcher(SearchProblems.QuadraticSpace, new RandomSearcherOptions { Seed = 9 }), SearchProblems.Quadratic, 9);

        tpe.Trials.Take(7).Select(t => t.Parameters).Should().Equal(random.Trials.Take(7).Select(t => t.Parameters));
        tpe.Trials.Skip(7).Select(t => t.Parameters).Should().NotIntersectWith(random.Trials.Select(t => t.Parameters));
    }

    [Fact]
    public void Suggest_FailedAndForeignTrials_AreIgnored()
    {
        var searcher = new TpeSearcher(SearchProblems.QuadraticSpace, new TpeSearcherOptions { Seed = 1, StartupTrials = 2 });
        ParameterAssignment good = SearchSpaceTests.Assign(("x", 1.3), ("y", -0.7), ("calibration", "wikitext"));
        ParameterAssignment foreign = SearchSpaceTests.Assign(("x", 1.3), ("layers", 3));
        List<Trial> history =
        [
            Trial.Completed(0, good, 0),
            Trial.Failed(1, good, "boom"),
            Trial.Completed(2, foreign, -100),
        ];

        // Only one usable trial: still in the random start-up, so the draw is the random searcher's.
        ParameterAssignment suggestion = searcher.Suggest(history);

        suggestion.Should().Equal(new RandomSearcher(SearchProblems.QuadraticSpace, new RandomSearcherOptions { Seed = 1 }).Suggest(history));
        history.Add(Trial.Completed(3, suggestion, SearchProblems.Quadratic(suggestion)));
        SearchProblems.QuadraticSpace.Contains(searcher.Suggest(history)).Should().BeTrue();
    }

    [Fact]
    public async Task Suggest_IndependentMode_AlsoConverges()
    {
        SearchResult result = await SearchProblems.RunAsync(
            new TpeSearcher(SearchProblems.QuadraticSpace, new TpeSearcherOptions { Seed = 0, Multivariate = false }), SearchProblems.Quadratic, 120);

        result.Best!.Value.Should().BeLessThan(0.2);
    }

    [Fact]
    public void Suggest_SingleValuedParameters_AreKept()
    {
        var space = new SearchSpace(SearchParameter.Integer("n", 4, 4), SearchParameter.Categorical("c", "only"), SearchParameter.Float("x", 0, 1));
        var searcher = new TpeSearcher(space, new TpeSearcherOptions { Seed = 0, StartupTrials = 0 });
        var history = new List<Trial>();
        for (int i = 0; i < 15; i++)
        {
            ParameterAssignment p = searcher.Suggest(history);
            p.GetInt32("n").Should().Be(4);
            p.GetString("c").Should().Be("only");
            history.Add(Trial.Completed(i, p, p.GetDouble("x")));
        }
    }

    public static TheoryData<string> ExtremeOptionSets => ["no prior", "all good", "none good", "no clip, endpoints, one candidate", "independent, no prior"];

    [Theory]
    [MemberData(nameof(ExtremeOptionSets))]
    public async Task Suggest_ExtremeOptions_StillSuggestAssignmentsInTheSpace(string set)
    {
        var options = new TpeSearcherOptions { Seed = 6, StartupTrials = 3 };
        switch (set)
        {
            case "no prior": options.PriorWeight = 0; break;
            case "all good": options.Gamma = n => n + 10; break;
            case "none good": options.Gamma = _ => -5; break;
            case "no clip, endpoints, one candidate": options.MagicClip = false; options.ConsiderEndpoints = true; options.CandidateCount = 1; break;
            default: options.PriorWeight = 0; options.Multivariate = false; break;
        }

        var space = new SearchSpace(SearchProblems.QuadraticSpace.Parameters.Append(SearchParameter.Integer("k", 1, 64, log: true)));
        SearchResult result = await SearchProblems.RunAsync(new TpeSearcher(space, options), p => SearchProblems.Quadratic(p) + p.GetInt32("k"), 40);

        result.Trials.Should().OnlyContain(t => t.HasValue && space.Contains(t.Parameters));
    }

    [Fact]
    public void Constructor_InvalidOptions_ListsEveryProblem()
    {
        var options = new TpeSearcherOptions { StartupTrials = -1, CandidateCount = 0, PriorWeight = double.PositiveInfinity };

        Action act = () => _ = new TpeSearcher(SearchProblems.QuadraticSpace, options);

        act.Should().Throw<OptionsValidationException>()
            .Which.Failures.Should().Contain(f => f.Contains("StartupTrials")).And.Contain(f => f.Contains("CandidateCount")).And.Contain(f => f.Contains("PriorWeight"));
    }

    [Fact]
    public void Constructor_OptionsChangedAfterwards_DoNotAffectTheSearcher()
    {
        var options = new TpeSearcherOptions { Seed = 3, StartupTrials = 1 };
        var searcher = new TpeSearcher(SearchProblems.QuadraticSpace, options);
        ParameterAssignment first = SearchSpaceTests.Assign(("x", 0.0), ("y", 0.0), ("calibration", "c4"));
        List<Trial> history = [Trial.Completed(0, first, 1)];
        ParameterAssignment before = searcher.Suggest(history);

        options.StartupTrials = 100;

        searcher.Suggest(history).Should().Equal(before);
        before.Should().NotEqual(new RandomSearcher(SearchProblems.QuadraticSpace, new RandomSearcherOptions { Seed = 3 }).Suggest(history), "one trial ends the start-up");
    }
}
