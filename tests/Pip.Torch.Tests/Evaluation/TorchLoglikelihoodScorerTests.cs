using Pip.Evaluation;
using Pip.Torch.Evaluation;
using Pip.Torch.Models;
using Pip.Torch.Tests.Models;
using static TorchSharp.torch;

namespace Pip.Torch.Tests.Evaluation;

public sealed class TorchLoglikelihoodScorerTests : IDisposable
{
    private const int Bos = 1;
    private readonly LlamaForCausalLM _model = TinyModels.Random(TinyModels.Config(layers: 2), seed: 11);

    public void Dispose() => _model.Dispose();

    /// <summary>One token per character (ids 2 … 60), BOS in front when special tokens are asked for.</summary>
    private static readonly RequestEncoder CharEncoder = new((text, special) =>
        (special ? new[] { Bos } : []).Concat(text.Select(c => 2 + c % 59)).ToArray(), Bos);

    /// <summary>
    /// The reference: run the model once on the whole (untruncated) sequence with <see cref="LlamaForCausalLM.Logits"/>,
    /// log-softmax in float64, and sum the log-probabilities of the continuation tokens.
    /// </summary>
    private double Expected(IReadOnlyList<int> context, IReadOnlyList<int> continuation)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var whole = context.Concat(continuation).ToArray();
        var logProbs = TinyModels.ToRows(_model.Logits(TinyModels.Ids(whole)).to(ScalarType.Float64).log_softmax(-1));
        double sum = 0;
        for (var i = 0; i < continuation.Count; i++) sum += logProbs[context.Count - 1 + i][continuation[i]];
        return sum;
    }

    private double Expected(LoglikelihoodRequest request)
    {
        var encoded = CharEncoder.Encode(request);
        return Expected(encoded.Context, encoded.Continuation);
    }

    [Fact]
    public void ScoreTokens_MixedLengthsAcrossBatches_MatchLogitsReference()
    {
        var requests = new[]
        {
            new EncodedRequest(TinyModels.RandomTokens(5, 1), TinyModels.RandomTokens(1, 2)),
            new EncodedRequest(TinyModels.RandomTokens(2, 3), TinyModels.RandomTokens(7, 4)),
            new EncodedRequest(TinyModels.RandomTokens(9, 5), TinyModels.RandomTokens(3, 6)),
            new EncodedRequest([Bos], TinyModels.RandomTokens(4, 7)),
            new EncodedRequest(TinyModels.RandomTokens(3, 8), TinyModels.RandomTokens(2, 9)),
        };
        var scorer = new TorchLoglikelihoodScorer(_model, CharEncoder, maxBatchSize: 2);
        var results = scorer.ScoreTokens(requests);

        results.Should().HaveCount(requests.Length);
        for (var r = 0; r < requests.Length; r++)
            results[r].LogLikelihood.Should().BeApproximately(Expected(requests[r].Context, requests[r].Continuation), 1e-4, $"request {r}");
    }

    [Fact]
    public void ScoreTokens_GreedyContinuation_IsGreedy()
    {
        var context = TinyModels.RandomTokens(4, 21);
        var greedy = _model.Generate(context, 3);
        var scorer = new TorchLoglikelihoodScorer(_model, CharEncoder);
        var notGreedy = greedy.ToArray();
        notGreedy[1] = (notGreedy[1] + 1) % 61;
        var results = scorer.ScoreTokens([new EncodedRequest(context, greedy), new EncodedRequest(context, notGreedy)]);
        results[0].IsGreedy.Should().BeTrue();
        results[1].IsGreedy.Should().BeFalse();
    }

    [Fact]
    public void ScoreTokens_LongerThanMaxLength_LeftTruncatesAsLmEval()
    {
        var context = TinyModels.RandomTokens(8, 31);
        var continuation = TinyModels.RandomTokens(3, 32);
        const int MaxLength = 6;
        var scorer = new TorchLoglikelihoodScorer(_model, CharEncoder, maxLength: MaxLength);
        var result = scorer.ScoreTokens([new EncodedRequest(context, continuation)]).Single();

        // lm-eval keeps the last max_length + 1 tokens of context + continuation: here 4 context tokens remain.
        var kept = context.Concat(continuation).TakeLast(MaxLength + 1).ToArray();
        var expected = Expected(kept[..^continuation.Length], continuation);
        result.LogLikelihood.Should().BeApproximately(expected, 1e-4);
        result.LogLikelihood.Should().NotBeApproximately(Expected(context, continuation), 1e-3);

        var tooLong = () => new TorchLoglikelihoodScorer(_model, CharEncoder, maxLength: 2).ScoreTokens([new EncodedRequest(context, continuation)]);
        tooLong.Should().Throw<ArgumentException>().WithMessage("*3 tokens*maximum length 2*");
    }

    [Fact]
    public void ScoreTokens_BadRequests_Throw()
    {
        var scorer = new TorchLoglikelihoodScorer(_model, CharEncoder);
        ((Action)(() => scorer.ScoreTokens([new EncodedRequest([1], [])]))).Should().Throw<ArgumentException>().WithMessage("*no continuation*");
        ((Action)(() => scorer.ScoreTokens([new EncodedRequest([], [1])]))).Should().Throw<ArgumentException>().WithMessage("*no context*");
        ((Action)(() => scorer.ScoreTokens([new EncodedRequest([1], [61])]))).Should().Throw<ArgumentException>().WithMessage("*61*vocabulary*");
    }

    [Fact]
    public void EvaluateTask_HandBuiltItem_PredictsArgmaxOfIndependentLogLikelihoods()
    {
        string[] choices = ["cat", "dog", "bird", "fish"];
        var item = new MultipleChoiceItem(choices.Select(c => new LoglikelihoodRequest("Question: pet?\nAnswer:", " " + c)).ToArray(), choices, gold: 0);
        var expected = item.Requests.Select(Expected).ToArray();
        var best = Array.IndexOf(expected, expected.Max());
        var scorer = new TorchLoglikelihoodScorer(_model, CharEncoder);

        var scored = scorer.Score(item.Requests);
        scored.Select(r => r.LogLikelihood).Should().Equal(expected, (a, b) => Math.Abs(a - b) < 1e-4);

        var rightGold = new MultipleChoiceItem(item.Requests, choices, best);
        var wrongGold = new MultipleChoiceItem(item.Requests, choices, (best + 1) % choices.Length);
        var result = ZeroShotEvaluator.EvaluateTask(new MultipleChoiceTask("pets", [rightGold, wrongGold], ReportsAccNorm: false), scorer);
        result.Items.Select(s => s.Prediction).Should().Equal(best, best);
        result.Acc.Should().Be(0.5);
    }

    [Fact]
    public void EvaluateTask_ChoicesOfDifferentLengths_AccAndAccNormDisagree()
    {
        // The same context with choices of 1 … 8 characters: the summed log-likelihood favours short choices, the
        // per-byte one need not. Find (from independent log-likelihoods) a pair where the two argmaxes differ.
        const string Context = "Answer:";
        var candidates = Enumerable.Range(1, 8).Select(n => new string((char)('a' + n), n)).ToArray();
        var lls = candidates.ToDictionary(c => c, c => Expected(new LoglikelihoodRequest(Context, " " + c)));
        var pair = (from a in candidates
                    from b in candidates
                    where a.Length < b.Length
                    let sumPick = lls[a] >= lls[b] ? a : b
                    let normPick = lls[a] / a.Length >= lls[b] / b.Length ? a : b
                    where sumPick != normPick
                    select (SumPick: sumPick, NormPick: normPick)).FirstOrDefault();
        pair.Should().NotBe(default((string, string)), "some pair of lengths must rank differently per token than in sum");

        string[] choices = [pair.SumPick, pair.NormPick];
        var item = new MultipleChoiceItem(choices.Select(c => new LoglikelihoodRequest(Context, " " + c)).ToArray(), choices, gold: 0);
        var result = ZeroShotEvaluator.EvaluateTask(new MultipleChoiceTask("lengths", [item], ReportsAccNorm: true), new TorchLoglikelihoodScorer(_model, CharEncoder));
        result.Acc.Should().Be(1);
        result.AccNorm.Should().Be(0);
    }

    [Fact]
    public void Score_WinoGrandePartialScoring_ScoresSharedContinuationUnderEachContext()
    {
        var line = """{"sentence": "Ann beat Bob so _ won.", "option1": "Ann", "option2": "Bob", "answer": "1"}""";
        var task = ZeroShotTasks.Load(ZeroShotTaskKind.WinoGrande, new StringReader(line), "w.jsonl");
        var item = task.Items.Single();
        var scorer = new TorchLoglikelihoodScorer(_model, CharEncoder);
        var scored = scorer.Score(item.Requests);

        // Context "Ann beat Bob so Ann" / "... so Bob", continuation " won." scored after each.
        scored[0].LogLikelihood.Should().BeApproximately(Expected(new LoglikelihoodRequest("Ann beat Bob so Ann", " won.")), 1e-4);
        scored[1].LogLikelihood.Should().BeApproximately(Expected(new LoglikelihoodRequest("Ann beat Bob so Bob", " won.")), 1e-4);
        CharEncoder.Encode(item.Requests[1]).Continuation.Should().HaveCount(" won.".Length);
    }
}
