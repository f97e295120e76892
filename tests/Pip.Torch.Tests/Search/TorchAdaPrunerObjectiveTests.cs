using System.ComponentModel.DataAnnotations;
using Pip.Evaluation;
using Pip.Search;
using Pip.Torch.Evaluation;
using Pip.Torch.Search;
using Pip.Torch.Tests.Pruning;

namespace Pip.Torch.Tests.Search;

/// <summary>A tiny random model with the byte tokenizer, two calibration corpora and a validation text of other words.</summary>
public sealed class AdaPrunerFixture : IDisposable
{
    public AdaPrunerFixture()
    {
        Directory.CreateDirectory(Folder);
        var random = new Random(5);
        string[] words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "home", "early", "birds", "flew", "over", "hills"];
        string Line(Random r, string[] vocabulary, int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => vocabulary[r.Next(vocabulary.Length)]));
        File.WriteAllLines(CorpusA, Enumerable.Range(0, 60).Select(_ => Line(random, words, 12)));
        File.WriteAllLines(CorpusB, Enumerable.Range(0, 60).Select(_ => Line(random, words[..8], 9)));
        string[] other = ["zebra", "quartz", "vivid", "jinx", "wolf", "pyx", "glyph", "bunk"];
        File.WriteAllLines(Validation, Enumerable.Range(0, 20).Select(_ => Line(random, other, 10)));
    }

    public string Folder { get; } = Path.Combine(Path.GetTempPath(), $"pip-adapruner-torch-{Guid.NewGuid():N}");

    public string CorpusA => Path.Combine(Folder, "a.txt");

    public string CorpusB => Path.Combine(Folder, "b.txt");

    public string Validation => Path.Combine(Folder, "valid.txt");

    public void Dispose()
    {
        if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true);
    }
}

public sealed class TorchAdaPrunerObjectiveTests(AdaPrunerFixture data) : IClassFixture<AdaPrunerFixture>
{
    private const int ValidationTokens = 192;

    private AdaPrunerConfiguration Width(string metric = "taylor", WidthGroupReduction reduction = WidthGroupReduction.Sum, string corpus = "a") => new()
    {
        Mode = AdaPrunerMode.Width,
        Corpus = corpus,
        CorpusPath = corpus == "a" ? data.CorpusA : data.CorpusB,
        SampleCount = 3,
        SequenceLength = 24,
        Metric = metric,
        GroupReduction = reduction,
        Allocation = WidthAllocation.Uniform,
    };

    private TorchAdaPrunerObjective Objective(TorchCausalLM dense, TorchAdaPrunerOptions? options = null) =>
        new(dense, TorchAdaPrunerObjective.LoadValidationTokens(data.Validation, dense.Tokenizer!, ValidationTokens),
            options ?? new TorchAdaPrunerOptions { Ratio = 0.2, ValidationWindow = 32 });

    [Fact]
    public async Task EvaluateAsync_Width_PrunesAFreshCopyAndLeavesTheDenseModelUntouched()
    {
        using var dense = PruningFixtures.Create(seed: 11);
        var snapshot = PruningFixtures.Snapshot(dense.Module);
        long parameters = dense.ParameterCount;
        var objective = Objective(dense);

        AdaPrunerEvaluation first = await objective.EvaluateAsync(Width());
        AdaPrunerEvaluation second = await objective.EvaluateAsync(Width());

        dense.Module.ShouldEqual(snapshot);
        dense.ParameterCount.Should().Be(parameters);
        dense.Module.ShouldHaveNoGradients();
        first.ParametersBefore.Should().Be(parameters);
        first.ParametersAfter.Should().BeLessThan(parameters);
        first.RemovedParameterRatio.Should().BeInRange(0.05, 0.2);
        double.IsFinite(first.Objective).Should().BeTrue();
        first.Objective.Should().BeGreaterThan(1);
        // Had the second evaluation pruned the first one's model, it would have removed more.
        second.ParametersAfter.Should().Be(first.ParametersAfter);
        second.Objective.Should().Be(first.Objective);
        first.ObjectiveBeforeRecovery.Should().BeNull();
        first.Seconds.Should().BeGreaterThanOrEqualTo(first.PruningSeconds + first.EvaluationSeconds - 1e-9);
    }

    [Fact]
    public async Task EvaluateAsync_DifferentMetricsAndData_GiveDifferentObjectives()
    {
        using var dense = PruningFixtures.Create(seed: 12);
        var objective = Objective(dense);
        double dense0 = objective.EvaluateDense().Perplexity;

        var values = new List<double>();
        foreach (var c in new[] { Width("taylor"), Width("magnitude"), Width("wanda-sp", WidthGroupReduction.Max), Width("taylor", corpus: "b") })
        {
            values.Add((await objective.EvaluateAsync(c)).Objective);
        }

        values.Should().OnlyHaveUniqueItems("the metric, the aggregation and the data change which units go");
        values.Should().OnlyContain(v => v != dense0);
    }

    [Fact]
    public async Task PruneAsync_ReturnsThePrunedModelItsReportAndTheMeasuredPerplexity()
    {
        using var dense = PruningFixtures.Create(seed: 13);
        var objective = Objective(dense);
        var configuration = Width("wanda-sp", WidthGroupReduction.Max);

        using AdaPrunedModel pruned = await objective.PruneAsync(configuration);

        pruned.Model.Should().NotBeSameAs(dense);
        pruned.Model.ParameterCount.Should().Be(pruned.Evaluation.ParametersAfter);
        pruned.Report.Settings.Metric.Should().Be("wanda-sp");
        pruned.Report.Settings.Options["metric.GroupReduction"].Should().Be("Max");
        pruned.Report.Settings.Options["metric.MaxTokens"].Should().Be("24");
        pruned.Report.Samples.Should().HaveCount(3);
        pruned.Recovery.Should().BeNull();
        var tokens = TorchAdaPrunerObjective.LoadValidationTokens(data.Validation, dense.Tokenizer!, ValidationTokens);
        var measured = CorpusPerplexity.Evaluate(pruned.Model.Module, new TokenizedCorpus("v", tokens, new PerplexityText("v", "", null, 0, "")), new CorpusWindowing { Window = 32 });
        pruned.Evaluation.Objective.Should().BeApproximately(measured.Perplexity, 1e-6 * measured.Perplexity);
    }

    [Theory]
    [InlineData("pip", "random-char", "L1")]
    [InlineData("pip", "lexicon", "Linf")]
    [InlineData("block-influence", null, null)]
    public async Task EvaluateAsync_Depth_RemovesLayersOfACopy(string metric, string? perturber, string? norm)
    {
        using var dense = PruningFixtures.Create(seed: 14);
        var snapshot = PruningFixtures.Snapshot(dense.Module);
        var objective = Objective(dense, new TorchAdaPrunerOptions { Ratio = 0.2, ValidationWindow = 32, OneShot = metric != "pip" });
        var configuration = new AdaPrunerConfiguration
        {
            Mode = AdaPrunerMode.Depth, Corpus = "a", CorpusPath = data.CorpusA, SampleCount = 2, SequenceLength = 16, Metric = metric, Perturber = perturber, Norm = norm,
        };

        using AdaPrunedModel pruned = await objective.PruneAsync(configuration);

        pruned.Model.LayerCount.Should().Be(2, "one layer of three fits 20 % of the parameters");
        pruned.Report.Settings.Metric.Should().Be(metric);
        if (perturber is not null)
        {
            pruned.Report.Settings.Perturber.Should().Be(perturber);
            pruned.Report.Settings.Norm.Should().Be(norm);
        }

        dense.LayerCount.Should().Be(3);
        dense.Module.ShouldEqual(snapshot);
        double.IsFinite(pruned.Evaluation.Objective).Should().BeTrue();
    }

    [Fact]
    public async Task EvaluateAsync_WithRecovery_MeasuresBeforeAndAfterTheLoraSteps()
    {
        using var dense = PruningFixtures.Create(seed: 15);
        var snapshot = PruningFixtures.Snapshot(dense.Module);
        var objective = Objective(dense, new TorchAdaPrunerOptions
        {
            Ratio = 0.2, ValidationWindow = 32, RecoverySteps = 3, RecoveryBatchSize = 2, RecoverySequenceLength = 16, RecoveryLearningRate = 1e-2, RecoveryPath = data.CorpusB,
        });

        using AdaPrunedModel pruned = await objective.PruneAsync(Width());

        pruned.Recovery.Should().NotBeNull();
        pruned.Recovery!.Training.Steps.Should().Be(3);
        pruned.Recovery.Merged.Should().BeTrue();
        pruned.Evaluation.ObjectiveBeforeRecovery.Should().NotBeNull();
        pruned.Evaluation.Objective.Should().NotBe(pruned.Evaluation.ObjectiveBeforeRecovery!.Value);
        pruned.Evaluation.RecoverySeconds.Should().BeGreaterThan(0);
        pruned.Model.ParameterCount.Should().Be(pruned.Evaluation.ParametersAfter, "the adapters are merged");
        dense.Module.ShouldEqual(snapshot);
        objective.Describe()["recovery_steps"].Should().Be("3");
    }

    [Fact]
    public async Task EvaluateAsync_UnknownMetricOrModeMismatch_Throws()
    {
        using var dense = PruningFixtures.Create(seed: 16);
        var objective = Objective(dense);

        await FluentActions.Awaiting(() => objective.EvaluateAsync(Width("pip")).AsTask()).Should().ThrowAsync<ArgumentException>().WithMessage("*'pip' is not a width metric*");
        await FluentActions.Awaiting(() => objective.EvaluateAsync(Width("flap") with { Mode = AdaPrunerMode.Depth }).AsTask()).Should().ThrowAsync<ArgumentException>().WithMessage("*'flap' is not a depth metric*");
    }

    [Fact]
    public async Task Search_ThreeTrialsWithTheTorchObjective_ReportsEveryTrialAndPrunesEachCopy()
    {
        using var dense = PruningFixtures.Create(seed: 17);
        var snapshot = PruningFixtures.Snapshot(dense.Module);
        var space = new AdaPrunerSpace(new AdaPrunerSpaceOptions
        {
            Corpora = [new AdaPrunerCorpus("a", data.CorpusA), new AdaPrunerCorpus("b", data.CorpusB)],
            SampleCounts = [2, 3],
            SequenceLengths = [16],
            Metrics = ["taylor", "magnitude"],
            GroupReductions = [WidthGroupReduction.Sum, WidthGroupReduction.Max],
        });

        AdaPrunerReport report = await new AdaPrunerSearch(space, new AdaPrunerSearchOptions { MaxTrials = 3, Seed = 1 }).RunAsync(Objective(dense));

        report.Trials.Should().HaveCount(3).And.OnlyContain(t => t.Status == TrialStatus.Completed && t.RemovedParameterRatio > 0.05 && t.RemovedParameterRatio <= 0.2);
        report.Best.Should().NotBeNull();
        dense.Module.ShouldEqual(snapshot);
    }

    [Fact]
    public void LoadValidationTokens_KeepsTheFirstTokensOfTheText()
    {
        var tokenizer = PruningFixtures.Tokenizer;
        var all = tokenizer.Encode(File.ReadAllText(data.Validation));

        TorchAdaPrunerObjective.LoadValidationTokens(data.Validation, tokenizer, 50).Should().Equal(all[..50]);
        TorchAdaPrunerObjective.LoadValidationTokens(data.Validation, tokenizer, null).Should().Equal(all);
        FluentActions.Invoking(() => TorchAdaPrunerObjective.LoadValidationTokens(Path.Combine(data.Folder, "missing.txt"), tokenizer))
            .Should().Throw<FileNotFoundException>().WithMessage("*missing.txt*");
    }

    [Fact]
    public void Constructor_BadInput_Throws()
    {
        using var dense = PruningFixtures.Create(seed: 18);
        FluentActions.Invoking(() => new TorchAdaPrunerObjective(dense, [1, 2, 3], new TorchAdaPrunerOptions { ValidationWindow = 32 }))
            .Should().Throw<ArgumentException>().WithMessage("*3 tokens*");
        FluentActions.Invoking(() => new TorchAdaPrunerObjective(dense, Enumerable.Range(2, 64).ToArray(), new TorchAdaPrunerOptions { Ratio = 1.5, RecoverySteps = -1 }))
            .Should().Throw<ValidationException>().Which.Message.Should().Contain("Ratio").And.Contain("RecoverySteps");
        using var noTokenizer = new TorchCausalLM(PruningFixtures.Create(seed: 19).Module, null);
        FluentActions.Invoking(() => new TorchAdaPrunerObjective(noTokenizer, Enumerable.Range(2, 200).ToArray()))
            .Should().Throw<ArgumentException>().WithMessage("*tokenizer*");
    }
}
