using Pip.Torch.Models;
using Pip.Torch.Pruning;
using Pip.Torch.Tests.Models;
using static Pip.Torch.Tests.Pruning.PruningFixtures;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Pruning;

public sealed class TorchMetricsTests
{
    private const double Fp32Relative = 1e-4;

    // ----- PertImport -------------------------------------------------------------------------------------------

    /// <summary>
    /// The obvious PertImport: for each pair, two SEPARATE full backward passes, the flattened per-layer gradients
    /// subtracted, the norm taken by hand, divided by the parameter count; mean over samples (or, summed, the norm
    /// of the difference summed over samples). One list per perturbation set.
    /// </summary>
    private static double[][] ReferencePertImport(TorchCausalLM lm, TestNorm norm, PertImportAggregation aggregation, params int[] sets)
    {
        var originals = Texts.Select(t => lm.Tokenize(t)).ToArray();
        var originalGradients = originals.Select(ids => LayerGradients(lm.Module, ids)).ToArray();
        return sets.Select(set =>
        {
            var twinGradients = TwinSets[set].Select(t => LayerGradients(lm.Module, lm.Tokenize(t))).ToArray();
            var scores = new double[lm.LayerCount];
            for (int l = 0; l < scores.Length; l++)
            {
                long count = lm.GetLayerParameterCount(l);
                originalGradients[0][l].Length.Should().Be((int)count);
                if (aggregation == PertImportAggregation.PerSampleMean)
                {
                    scores[l] = Enumerable.Range(0, originals.Length)
                        .Average(i => norm.Of(Subtract(originalGradients[i][l], twinGradients[i][l])) / count);
                }
                else
                {
                    var sum = new double[count];
                    for (int i = 0; i < originals.Length; i++) sum = Add(sum, Subtract(originalGradients[i][l], twinGradients[i][l]));
                    scores[l] = norm.Of(sum) / count;
                }
            }

            return scores;
        }).ToArray();
    }

    [Theory]
    [InlineData("L1", PertImportAggregation.PerSampleMean)]
    [InlineData("L2", PertImportAggregation.PerSampleMean)]
    [InlineData("Linf", PertImportAggregation.PerSampleMean)]
    [InlineData("L1", PertImportAggregation.SummedDifference)]
    [InlineData("L2", PertImportAggregation.SummedDifference)]
    [InlineData("Linf", PertImportAggregation.SummedDifference)]
    public async Task PertImport_TwoPerturbationSets_EqualsTwoSeparateBackwardPassesPerPair(string normName, PertImportAggregation aggregation)
    {
        var norm = TestNorm.ByName(normName);
        using var lm = Create(seed: 11);
        // The pairs include twins one character longer and shorter than their original: the batch is padded.
        lm.Tokenize(TwinSets[0][1]).Count.Should().Be(lm.Tokenize(Texts[1]).Count + 1);
        lm.Tokenize(TwinSets[0][2]).Count.Should().Be(lm.Tokenize(Texts[2]).Count - 1);
        var snapshot = Snapshot(lm.Module);

        var scores = await new PerturbationImportanceMetric(norm, aggregation).ScoreAsync(Request(lm, 0, 1));
        var expected = ReferencePertImport(lm, norm, aggregation, 0, 1);

        scores.PerPerturbationSet.Should().NotBeNull().And.HaveCount(2);
        scores.PerPerturbationSet![0].ShouldBeCloseTo(expected[0], Fp32Relative, "set 0");
        scores.PerPerturbationSet[1].ShouldBeCloseTo(expected[1], Fp32Relative, "set 1");
        scores.Scores.ShouldBeCloseTo(Enumerable.Range(0, 3).Select(l => (expected[0][l] + expected[1][l]) / 2).ToArray(), Fp32Relative, "mean over sets");
        expected.SelectMany(s => s).Should().OnlyContain(v => v > 0);
        // The two sets perturb different words, so their scores differ: the per-set lists are not copies.
        Math.Abs(expected[0][0] - expected[1][0]).Should().BeGreaterThan(1e-3 * expected[0][0]);
        lm.Module.ShouldHaveNoGradients();
        lm.Module.ShouldEqual(snapshot);
    }

    [Fact]
    public async Task PertImport_QwenTiedModel_EqualsReference()
    {
        // Biases (Qwen2 q/k/v) are layer parameters too; the tied head is not.
        using var lm = Create(seed: 5, family: Pip.Checkpoints.DecoderFamily.Qwen2, tied: true);
        var scores = await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(Request(lm, 1));
        scores.Scores.ShouldBeCloseTo(ReferencePertImport(lm, TestNorm.L2, PertImportAggregation.PerSampleMean, 1)[0], Fp32Relative);
    }

    [Fact]
    public async Task PertImport_IdenticalTwins_ScoresNearZero()
    {
        using var lm = Create(seed: 2);
        var same = Texts.Select((t, i) => new PerturbedSample(new CalibrationSample(i, t), t, [])).ToArray();
        var request = new ImportanceRequest(lm, Samples, [same], 0, 0);
        var scores = await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(request);
        var real = await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(Request(lm, 0));
        for (int l = 0; l < 3; l++) scores.Scores[l].Should().BeLessThan(1e-5 * real.Scores[l]);
    }

    [Fact]
    public async Task PertImport_MaxTokens_CutsBothViews()
    {
        using var lm = Create(seed: 3);
        // The texts differ only after their first 6 tokens (BOS + 5 bytes): cut there, the views are the same.
        var samples = new[] { new CalibrationSample(0, "abcde and more") };
        var twins = new[] { new PerturbedSample(samples[0], "abcde or less", []) };
        var cut = await new PerturbationImportanceMetric(TestNorm.L2, maxTokens: 6).ScoreAsync(new ImportanceRequest(lm, samples, [twins], 0, 0));
        var full = await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(new ImportanceRequest(lm, samples, [twins], 0, 0));
        cut.Scores.Should().OnlyContain(s => s < 1e-9);
        full.Scores.Should().OnlyContain(s => s > 1e-6);
    }

    [Fact]
    public async Task PertImport_ReportsProgressPerPairAndSet()
    {
        using var lm = Create(seed: 4);
        var reports = new List<ScoringProgress>();
        var progress = new SynchronousProgress(reports.Add);
        await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(Request(lm, 0, 1) with { Progress = progress });
        reports.Select(r => r.Completed).Should().Equal(1, 2, 3, 4, 5, 6);
        reports.Should().OnlyContain(r => r.Total == 6 && r.Metric == "pip");
    }

    [Fact]
    public async Task PertImport_TwinSetOfWrongSize_Throws()
    {
        using var lm = Create(seed: 4);
        var request = Request(lm, 0) with { PerturbationSets = [Twins(0)[0].Take(2).ToArray()] };
        var act = async () => await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(request);
        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*one twin per sample*");
    }

    [Fact]
    public async Task PertImport_NoPerturbationSet_Throws()
    {
        using var lm = Create(seed: 4);
        var act = async () => await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(new ImportanceRequest(lm, Samples, [], 0, 0));
        await act.Should().ThrowAsync<ArgumentException>();
    }

    [Fact]
    public async Task PertImport_NotATorchModel_ThrowsNotSupportedNamingTheType()
    {
        var act = async () => await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(Request(new FakeModel(), 0));
        await act.Should().ThrowAsync<NotSupportedException>().WithMessage("*TorchCausalLM*");
    }

    // ----- Gradient norm, Taylor, magnitude ---------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(TestNorm.Names), MemberType = typeof(TestNorm))]
    public async Task GradientNorm_EqualsPlainBackwardReference(string normName)
    {
        var norm = TestNorm.ByName(normName);
        using var lm = Create(seed: 21);
        var scores = await new GradientNormMetric(norm).ScoreAsync(new ImportanceRequest(lm, Samples, [], 0, 0));

        var gradients = Texts.Select(t => LayerGradients(lm.Module, lm.Tokenize(t))).ToArray();
        var expected = Enumerable.Range(0, 3).Select(l => gradients.Average(g => norm.Of(g[l]) / g[l].Length)).ToArray();
        scores.Scores.ShouldBeCloseTo(expected, Fp32Relative);
        scores.PerPerturbationSet.Should().BeNull();
        lm.Module.ShouldHaveNoGradients();
    }

    [Fact]
    public async Task Taylor_EqualsSumOfAbsWeightTimesGradientOfMeanLoss()
    {
        using var lm = Create(seed: 31);
        var snapshot = Snapshot(lm.Module);
        var scores = await new TaylorMetric().ScoreAsync(new ImportanceRequest(lm, Samples, [], 0, 0));

        // L = mean over the samples of each sample's mean NLL, so ∂L/∂w is the mean of the per-sample gradients.
        var gradients = Texts.Select(t => LayerGradients(lm.Module, lm.Tokenize(t))).ToArray();
        var weights = LayerWeights(lm.Module);
        var expected = Enumerable.Range(0, 3).Select(l =>
            weights[l].Select((w, i) => Math.Abs(w * gradients.Average(g => g[l][i]))).Sum()).ToArray();
        scores.Scores.ShouldBeCloseTo(expected, Fp32Relative);
        lm.Module.ShouldHaveNoGradients();
        lm.Module.ShouldEqual(snapshot);
    }

    [Fact]
    public async Task Magnitude_EqualsMeanAbsoluteWeightByHand()
    {
        using var lm = Create(seed: 41, layers: 4);
        var scores = await new MagnitudeMetric().ScoreAsync(new ImportanceRequest(lm, Samples, [], 0, 0));
        var expected = LayerWeights(lm.Module).Select(w => w.Average(Math.Abs)).ToArray();
        scores.Scores.ShouldBeCloseTo(expected, 1e-6);
    }

    // ----- Block influence --------------------------------------------------------------------------------------

    [Fact]
    public async Task BlockInfluence_EqualsOneMinusMeanCosineByHand()
    {
        using var lm = Create(seed: 51);
        var scores = await new BlockInfluenceMetric().ScoreAsync(new ImportanceRequest(lm, Samples, [], 0, 0));

        var cosines = new List<double>[3];
        for (int l = 0; l < 3; l++) cosines[l] = [];
        foreach (var text in Texts)
        {
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var ids = lm.Tokenize(text);
            using var output = lm.Module.call(new CausalLMInput(tensor(ids.Select(i => (long)i).ToArray(), [1, ids.Count])) { OutputHiddenStates = true });
            var states = output.HiddenStates!.Select(h => TinyModels.ToRows(h)).ToArray();
            for (int l = 0; l < 3; l++)
            {
                for (int t = 0; t < ids.Count; t++) cosines[l].Add(Cosine(states[l][t], states[l + 1][t]));
            }
        }

        scores.Scores.ShouldBeCloseTo(cosines.Select(c => 1 - c.Average()).ToArray(), 1e-4);
    }

    [Fact]
    public async Task BlockInfluence_LayerWhoseOutputEqualsInput_ScoresZeroAndLowest()
    {
        using var lm = Create(seed: 52, layers: 4);
        using (no_grad())
        {
            lm.Module.Layers[2].SelfAttn.OProj.weight!.zero_();
            lm.Module.Layers[2].Mlp.DownProj.weight!.zero_();
        }

        var scores = await new BlockInfluenceMetric().ScoreAsync(new ImportanceRequest(lm, Samples, [], 0, 0));
        scores.Scores[2].Should().BeApproximately(0, 1e-6);
        scores.Scores.Where((_, l) => l != 2).Should().OnlyContain(s => s > 1e-3);
        Array.IndexOf(scores.Scores.ToArray(), scores.Scores.Min()).Should().Be(2);
    }

    [Fact]
    public async Task BlockInfluence_EmptySampleAmongOthers_IsSkipped()
    {
        using var lm = new TorchCausalLM(TinyModels.Random(Config(), 53), TokenizerWithoutBos);
        var samples = new[] { new CalibrationSample(0, ""), new CalibrationSample(1, Texts[0]) };
        var withEmpty = await new BlockInfluenceMetric().ScoreAsync(new ImportanceRequest(lm, samples, [], 0, 0));
        var without = await new BlockInfluenceMetric().ScoreAsync(new ImportanceRequest(lm, samples[1..], [], 0, 0));
        withEmpty.Scores.Should().Equal(without.Scores);
    }

    [Fact]
    public async Task BlockInfluence_OnlyEmptySamples_Throws()
    {
        using var lm = new TorchCausalLM(TinyModels.Random(Config(), 54), TokenizerWithoutBos);
        var act = async () => await new BlockInfluenceMetric().ScoreAsync(new ImportanceRequest(lm, [new CalibrationSample(0, "")], [], 0, 0));
        await act.Should().ThrowAsync<ArgumentException>().WithMessage("*at least one calibration token*");
    }

    [Fact]
    public async Task GradientMetrics_NoSample_Throw()
    {
        using var lm = Create(seed: 55);
        var pip = async () => await new PerturbationImportanceMetric(TestNorm.L2).ScoreAsync(new ImportanceRequest(lm, [], [[]], 0, 0));
        var gradient = async () => await new GradientNormMetric(TestNorm.L2).ScoreAsync(new ImportanceRequest(lm, [], [], 0, 0));
        var taylor = async () => await new TaylorMetric().ScoreAsync(new ImportanceRequest(lm, [], [], 0, 0));
        await pip.Should().ThrowAsync<ArgumentException>();
        await gradient.Should().ThrowAsync<ArgumentException>();
        await taylor.Should().ThrowAsync<ArgumentException>();
    }

    private static double Cosine(double[] a, double[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }

        return dot / Math.Sqrt(na * nb);
    }

    private sealed class SynchronousProgress(Action<ScoringProgress> report) : IProgress<ScoringProgress>
    {
        public void Report(ScoringProgress value) => report(value);
    }

    private sealed class FakeModel : IPrunableModel
    {
        public string Architecture => "Fake";

        public int LayerCount => 1;

        public long ParameterCount => 1;

        public IReadOnlyList<int> OriginalLayerIndices => [0];

        public long GetLayerParameterCount(int layer) => 1;

        public IReadOnlyList<int> Tokenize(string text) => [0, 1];

        public ValueTask<double> ComputeLossAsync(IReadOnlyList<IReadOnlyList<int>> sequences, IReadOnlySet<int>? skipLayers = null, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(0.0);

        public void RemoveLayers(IReadOnlyCollection<int> layers) => throw new NotSupportedException();
    }
}
