using Microsoft.Extensions.Options;
using Pip.Search;

namespace Pip.Tests.Search;

/// <summary>A synthetic objective: an additive score of the configuration's choices, counting its calls.</summary>
internal sealed class CountingObjective(Func<AdaPrunerConfiguration, double>? score = null) : IAdaPrunerObjective
{
    public List<string> Evaluated { get; } = [];

    /// <summary>Consistent with the keys: the data terms count only for metrics that read data, the aggregation only where it is used.</summary>
    public static double Additive(AdaPrunerConfiguration c) =>
        100
        + (!c.UsesCalibrationData ? 1 : (c.Corpus == "news" ? 0 : 3) + (c.SampleCount == 16 ? 0 : 2) + (c.SequenceLength == 128 ? 0 : 1.5))
        + c.Metric switch { "taylor" => 0, "flap" => 1, _ => 4 }
        + (c.UsesGroupReduction && c.GroupReduction == WidthGroupReduction.Max ? 2.5 : 0);

    public ValueTask<AdaPrunerEvaluation> EvaluateAsync(AdaPrunerConfiguration configuration, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Evaluated.Add(configuration.Key);
        double value = (score ?? Additive)(configuration);
        return ValueTask.FromResult(new AdaPrunerEvaluation { Objective = value, ParametersBefore = 1000, ParametersAfter = 800, Seconds = 0.01 });
    }
}

public class AdaPrunerSearchTests
{
    private static AdaPrunerSpace Space() => new(AdaPrunerSpaceTests.WidthOptions());

    [Fact]
    public async Task RunAsync_Report_HasEveryTrialWithConfigurationObjectiveAndBestSoFar()
    {
        var objective = new CountingObjective();
        var progress = new List<AdaPrunerProgress>();
        var search = new AdaPrunerSearch(Space(), new AdaPrunerSearchOptions { MaxTrials = 20, Seed = 3 });

        AdaPrunerReport report = await search.RunAsync(objective, progress: new SyncProgress<AdaPrunerProgress>(progress.Add));

        report.Trials.Should().HaveCount(20);
        report.Trials.Select(t => t.Number).Should().Equal(Enumerable.Range(0, 20));
        progress.Select(p => p.Trial).Should().Equal(report.Trials);
        foreach (AdaPrunerTrial t in report.Trials)
        {
            t.Status.Should().Be(TrialStatus.Completed);
            t.Configuration.Should().Be(Space().Decode(t.Parameters));
            t.Key.Should().Be(t.Configuration!.Key);
            t.Objective.Should().Be(CountingObjective.Additive(t.Configuration));
            t.RemovedParameterRatio.Should().BeApproximately(0.2, 1e-12);
        }

        double best = double.PositiveInfinity;
        for (int i = 0; i < report.Trials.Count; i++)
        {
            best = Math.Min(best, report.Trials[i].Objective!.Value);
            report.Trials[i].BestSoFar.Should().Be(best);
            report.BestSoFar[i].Should().Be(best);
        }

        report.Best!.Objective.Should().Be(best);
        report.Best.Number.Should().Be(report.Trials.First(t => t.Objective == best).Number, "the earliest of equals");
        report.Evaluations.Should().Be(objective.Evaluated.Count);
        report.Evaluations.Should().Be(report.Trials.Count(t => !t.Cached));
        report.CachedTrials.Should().Be(20 - report.Evaluations);
        report.GridSize.Should().Be(48);
        report.Searcher.Should().Be(AdaPrunerSearcherKind.Tpe);
        report.StartupTrials.Should().Be(7, "min(10, ⌈20/3⌉)");
    }

    [Fact]
    public async Task RunAsync_RepeatedConfigurations_AreLookedUpNotEvaluatedAgain()
    {
        // Two corpora, everything else fixed: 10 trials can only hold 2 distinct configurations.
        var options = AdaPrunerSpaceTests.WidthOptions();
        options.SampleCounts = [16];
        options.SequenceLengths = [128];
        options.Metrics = ["taylor"];
        options.GroupReductions = [WidthGroupReduction.Sum];
        var objective = new CountingObjective();

        AdaPrunerReport report = await new AdaPrunerSearch(new AdaPrunerSpace(options), new AdaPrunerSearchOptions { MaxTrials = 10, Searcher = AdaPrunerSearcherKind.Random })
            .RunAsync(objective);

        objective.Evaluated.Should().OnlyHaveUniqueItems().And.HaveCountLessThanOrEqualTo(2);
        report.Evaluations.Should().Be(objective.Evaluated.Count);
        report.CachedTrials.Should().Be(10 - objective.Evaluated.Count);
        report.Trials.Where(t => t.Cached).Should().OnlyContain(t => t.Evaluation != null && t.Objective == CountingObjective.Additive(t.Configuration!));
    }

    [Fact]
    public async Task RunAsync_EquivalentConfigurations_ShareOneEvaluation()
    {
        // FLAP ignores the aggregation: sum and max are one configuration.
        var options = AdaPrunerSpaceTests.WidthOptions();
        options.Corpora = [options.Corpora[0]];
        options.SampleCounts = [16];
        options.SequenceLengths = [128];
        options.Metrics = ["flap"];
        var objective = new CountingObjective();

        AdaPrunerReport report = await new AdaPrunerSearch(new AdaPrunerSpace(options), new AdaPrunerSearchOptions { MaxTrials = 6, Seed = 1 }).RunAsync(objective);

        report.Trials.Select(t => t.Parameters.GetString("aggregation")).Distinct().Should().HaveCount(2, "both aggregations are proposed");
        objective.Evaluated.Should().HaveCount(1);
    }

    [Fact]
    public async Task RunAsync_GivenCache_ReusesItsEntriesAndAddsNewOnes()
    {
        var space = Space();
        var cache = new AdaPrunerCache();
        AdaPrunerConfiguration known = space.Decode(space.Grid().First());
        cache.Set(known, new AdaPrunerEvaluation { Objective = 1, ParametersBefore = 10, ParametersAfter = 8 });
        var objective = new CountingObjective();

        AdaPrunerReport report = await new AdaPrunerSearch(space, new AdaPrunerSearchOptions { MaxTrials = 48, Searcher = AdaPrunerSearcherKind.Random, Seed = 5 })
            .RunAsync(objective, cache);

        objective.Evaluated.Should().NotContain(known.Key);
        cache.Count.Should().Be(1 + objective.Evaluated.Count);
        if (report.Trials.Any(t => t.Key == known.Key))
        {
            report.Best!.Objective.Should().Be(1);
        }
    }

    [Fact]
    public async Task RunAsync_ObjectiveThrows_RecordsFailedTrialsAndCachesNothingForThem()
    {
        var objective = new CountingObjective(c => c.Metric == "flap" ? throw new InvalidDataException("corpus too small") : CountingObjective.Additive(c));
        var cache = new AdaPrunerCache();

        AdaPrunerReport report = await new AdaPrunerSearch(Space(), new AdaPrunerSearchOptions { MaxTrials = 15, Searcher = AdaPrunerSearcherKind.Random, Seed = 2 })
            .RunAsync(objective, cache);

        var failed = report.Trials.Where(t => t.Status == TrialStatus.Failed).ToArray();
        failed.Should().NotBeEmpty();
        failed.Should().OnlyContain(t => t.Configuration!.Metric == "flap" && t.Error!.Contains("corpus too small") && t.Evaluation == null && t.Objective == null);
        report.FailedTrials.Should().Be(failed.Length);
        cache.Entries.Should().OnlyContain(e => e.Configuration.Metric != "flap");
        report.Best!.Configuration!.Metric.Should().NotBe("flap");
    }

    [Fact]
    public async Task RunAsync_Cancelled_Throws()
    {
        using var cts = new CancellationTokenSource();
        var objective = new CountingObjective(c =>
        {
            cts.Cancel();
            return 1;
        });

        await FluentActions.Awaiting(() => new AdaPrunerSearch(Space(), new AdaPrunerSearchOptions { MaxTrials = 5 }).RunAsync(objective, cancellationToken: cts.Token))
            .Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public async Task Report_Json_RoundTripsWithTrialsAndSpace()
    {
        AdaPrunerReport report = await new AdaPrunerSearch(Space(), new AdaPrunerSearchOptions { MaxTrials = 6 }).RunAsync(new CountingObjective());
        report = report with { Settings = new Dictionary<string, string> { ["ratio"] = "0.2" }, DenseObjective = 50 };
        string path = Path.Combine(Path.GetTempPath(), $"adapruner-report-{Guid.NewGuid():N}.json");
        try
        {
            await report.WriteAsync(path);
            string json = await File.ReadAllTextAsync(path);
            json.Should().Contain("\"searcher\": \"tpe\"").And.Contain("\"best_so_far\"").And.Contain("\"removed_parameter_ratio\"");

            AdaPrunerReport back = AdaPrunerReport.Read(path);
            back.Trials.Should().HaveCount(6);
            back.Trials.Select(t => (t.Parameters, t.Objective, t.BestSoFar, t.Key)).Should().Equal(report.Trials.Select(t => (t.Parameters, t.Objective, t.BestSoFar, t.Key)));
            back.Trials.Select(t => t.Configuration).Should().Equal(report.Trials.Select(t => t.Configuration));
            back.Space.Parameters.Select(p => p.ToString()).Should().Equal(report.Space.Parameters.Select(p => p.ToString()));
            back.Best!.Number.Should().Be(report.Best!.Number);
            back.Settings.Should().Equal(report.Settings);
            back.DenseObjective.Should().Be(50);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TrialsToReach_FirstTrialAtOrBelowTheValue_OrNull()
    {
        AdaPrunerTrial T(int n, double? best) => new() { Number = n, Parameters = new ParameterAssignment([]), Status = TrialStatus.Completed, BestSoFar = best };
        var report = new AdaPrunerReport
        {
            Mode = AdaPrunerMode.Width, Searcher = AdaPrunerSearcherKind.Random, Seed = 0, MaxTrials = 4, StartupTrials = 0,
            Space = Space().Space, GridSize = 48, Trials = [T(0, null), T(1, 5), T(2, 3), T(3, 3)],
        };

        report.TrialsToReach(3).Should().Be(3);
        report.TrialsToReach(5).Should().Be(2);
        report.TrialsToReach(2.9).Should().BeNull();
        report.TrialsToReach(2.9, tolerance: 0.2).Should().Be(3);
    }

    [Fact]
    public async Task RunAsync_TpeOnAnAdditiveTable_ReachesTheGridOptimumInFewerTrialsThanRandom()
    {
        // The whole grid evaluated once, then replayed: 48 points (26 distinct), a unique best.
        var space = Space();
        var table = new AdaPrunerCache();
        foreach (AdaPrunerConfiguration c in space.DistinctConfigurations())
        {
            table.Set(c, new AdaPrunerEvaluation { Objective = CountingObjective.Additive(c), ParametersBefore = 10, ParametersAfter = 8 });
        }

        double optimum = table.Entries.Min(e => e.Evaluation.Objective);
        table.Entries.Count(e => e.Evaluation.Objective == optimum).Should().Be(1);
        const int Budget = 60;
        var tpe = new List<int>();
        var random = new List<int>();
        for (int seed = 0; seed < 20; seed++)
        {
            foreach (var (kind, list) in new[] { (AdaPrunerSearcherKind.Tpe, tpe), (AdaPrunerSearcherKind.Random, random) })
            {
                var report = await new AdaPrunerSearch(space, new AdaPrunerSearchOptions { MaxTrials = Budget, Searcher = kind, Seed = seed })
                    .RunAsync(table.AsObjective());
                report.Evaluations.Should().Be(report.Trials.Select(t => t.Key).Distinct().Count(), "each distinct configuration is looked up in the table once");
                list.Add(report.TrialsToReach(optimum) ?? Budget + 1);
            }
        }

        tpe.Average().Should().BeLessThan(0.75 * random.Average(), $"TPE: {string.Join(",", tpe)}; random: {string.Join(",", random)}");
    }

    [Fact]
    public void Constructor_InvalidOptions_Throws()
    {
        FluentActions.Invoking(() => new AdaPrunerSearch(Space(), new AdaPrunerSearchOptions { MaxTrials = 0, StartupTrials = -1 }))
            .Should().Throw<OptionsValidationException>().Which.Failures.Should().HaveCount(2);
    }

    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}

public class AdaPrunerCacheTests
{
    private static AdaPrunerConfiguration Config(string metric = "taylor") => new()
    {
        Mode = AdaPrunerMode.Width, Corpus = "brown", CorpusPath = "/b.txt", SampleCount = 4, SequenceLength = 64, Metric = metric,
        GroupReduction = WidthGroupReduction.Sum, Allocation = WidthAllocation.Uniform,
    };

    [Fact]
    public async Task GetOrEvaluateAsync_SameKeyTwice_EvaluatesOnce()
    {
        var cache = new AdaPrunerCache();
        var objective = new CountingObjective(_ => 7);

        var first = await cache.GetOrEvaluateAsync(Config(), objective);
        var second = await cache.GetOrEvaluateAsync(Config() with { CorpusPath = "/elsewhere/b.txt" }, objective);
        var other = await cache.GetOrEvaluateAsync(Config("flap"), objective);

        first.Cached.Should().BeFalse();
        second.Cached.Should().BeTrue();
        second.Evaluation.Should().BeSameAs(first.Evaluation);
        other.Cached.Should().BeFalse();
        objective.Evaluated.Should().HaveCount(2);
        cache.Count.Should().Be(2);
    }

    [Fact]
    public async Task GetOrEvaluateAsync_InfiniteObjective_IsNotCached()
    {
        var cache = new AdaPrunerCache();
        var objective = new CountingObjective(_ => double.PositiveInfinity);

        await cache.GetOrEvaluateAsync(Config(), objective);
        await cache.GetOrEvaluateAsync(Config(), objective);

        objective.Evaluated.Should().HaveCount(2);
        cache.Count.Should().Be(0);
    }

    [Fact]
    public async Task SaveLoad_RoundTripsEntriesInOrder()
    {
        var cache = new AdaPrunerCache();
        cache.Set(Config(), new AdaPrunerEvaluation { Objective = 12.5, ObjectiveBeforeRecovery = 20, ParametersBefore = 100, ParametersAfter = 81, PruningSeconds = 1.5 });
        cache.Set(Config("flap"), new AdaPrunerEvaluation { Objective = 11, ParametersBefore = 100, ParametersAfter = 80 });
        string path = Path.Combine(Path.GetTempPath(), $"adapruner-cache-{Guid.NewGuid():N}.json");
        try
        {
            await cache.SaveAsync(path);
            AdaPrunerCache back = AdaPrunerCache.Load(path);

            back.Entries.Should().BeEquivalentTo(cache.Entries, o => o.WithStrictOrdering());
            back.TryGet(Config(), out var e).Should().BeTrue();
            e!.RemovedParameterRatio.Should().BeApproximately(0.19, 1e-12);
            await File.WriteAllTextAsync(path, "{\"format\": \"something-else\", \"entries\": []}");
            FluentActions.Invoking(() => AdaPrunerCache.Load(path)).Should().Throw<InvalidDataException>().WithMessage($"*{path}*");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task AsObjective_MissingKey_Throws()
    {
        var cache = new AdaPrunerCache();
        await FluentActions.Awaiting(async () => await cache.AsObjective().EvaluateAsync(Config())).Should().ThrowAsync<KeyNotFoundException>().WithMessage("*metric=taylor*");
    }
}

public class AdaPrunerCalibrationTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), $"adapruner-calibration-{Guid.NewGuid():N}");

    public AdaPrunerCalibrationTests() => Directory.CreateDirectory(_folder);

    public void Dispose()
    {
        Directory.Delete(_folder, recursive: true);
        GC.SuppressFinalize(this);
    }

    private static IReadOnlyList<string> Lines(int count) =>
        [.. Enumerable.Range(0, count).Select(i => string.Join(' ', Enumerable.Range(0, 5).Select(w => $"l{i}w{w}")))];

    [Fact]
    public void Draw_SameSeed_SameNonOverlappingPassagesOfExactlyTheWords()
    {
        var lines = Lines(200);

        CalibrationSet a = AdaPrunerCalibration.Draw(lines, 6, 12, seed: 1, "corpus.txt");
        CalibrationSet b = AdaPrunerCalibration.Draw(lines, 6, 12, seed: 1);
        CalibrationSet c = AdaPrunerCalibration.Draw(lines, 6, 12, seed: 2);

        a.Samples.Select(s => s.Text).Should().Equal(b.Samples.Select(s => s.Text));
        a.Samples.Select(s => s.Text).Should().NotEqual(c.Samples.Select(s => s.Text));
        a.SourcePath.Should().Be("corpus.txt");
        a.Samples.Select(s => s.Index).Should().Equal(0, 1, 2, 3, 4, 5);
        a.Samples.Should().OnlyContain(s => s.Text.Split(' ', StringSplitOptions.None).Length == 12);
        // Words are unique over the corpus: overlapping passages would share one.
        a.Samples.SelectMany(s => s.Text.Split(' ')).Should().OnlyHaveUniqueItems();
        // A passage runs over consecutive lines, in corpus order.
        var words = a.Samples[0].Text.Split(' ');
        int line = int.Parse(words[0][1..words[0].IndexOf('w')], System.Globalization.CultureInfo.InvariantCulture);
        int word = int.Parse(words[0][(words[0].IndexOf('w') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        word.Should().Be(0, "a passage starts at the beginning of a line");
        words[5].Should().Be($"l{line + 1}w0");
    }

    [Fact]
    public void Draw_CorpusTooSmall_ThrowsNamingIt()
    {
        FluentActions.Invoking(() => AdaPrunerCalibration.Draw(Lines(10), 4, 20, 0, "small.txt"))
            .Should().Throw<InvalidDataException>().WithMessage("*small.txt*4 were asked for*");
    }

    [Fact]
    public void ReadLines_SkipsBlankLinesAndTrims()
    {
        string path = Path.Combine(_folder, "c.txt");
        File.WriteAllText(path, "  one two \n\n\nthree\r\n   \n");

        AdaPrunerCalibration.ReadLines(path).Should().Equal("one two", "three");
        File.WriteAllText(path, "\n \n");
        FluentActions.Invoking(() => AdaPrunerCalibration.ReadLines(path)).Should().Throw<InvalidDataException>().WithMessage($"*{path}*");
    }

    [Fact]
    public void CheckDisjoint_SeparateTexts_Pass_SharedLineOrSameFile_Throw()
    {
        string calibration = Path.Combine(_folder, "calibration.txt");
        string other = Path.Combine(_folder, "other.txt");
        string validation = Path.Combine(_folder, "valid.txt");
        File.WriteAllLines(calibration, ["the quick brown fox jumps over the lazy dog today", "short line"]);
        File.WriteAllLines(other, ["a b c d e f g h i j", "short line"]);
        File.WriteAllLines(validation, ["one two three four five six seven eight nine", "short line"]);

        AdaPrunerCalibration.CheckDisjoint([calibration, other], validation);

        FluentActions.Invoking(() => AdaPrunerCalibration.CheckDisjoint([calibration, validation], validation))
            .Should().Throw<InvalidDataException>().WithMessage("*also a calibration*");
        File.AppendAllLines(other, ["  one two three four five six seven eight nine "]);
        FluentActions.Invoking(() => AdaPrunerCalibration.CheckDisjoint([calibration, other], validation))
            .Should().Throw<InvalidDataException>().WithMessage($"*{other}*line 3*one two three*");
    }
}
