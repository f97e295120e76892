using Pip.Evaluation;
using Pip.Tokenization;
using Pip.Torch.Evaluation;
using Pip.Torch.Tests.Models;

namespace Pip.Torch.Tests.Evaluation;

/// <summary>The harness over a <see cref="TorchCausalLM"/> with a real (tiny, trained) byte-level BPE tokenizer.</summary>
public sealed class TorchCausalLMEvaluationTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "pip-evalh-lm-" + Guid.NewGuid().ToString("N"));
    private readonly TorchCausalLM _lm;

    public TorchCausalLMEvaluationTests()
    {
        var texts = Enumerable.Repeat("Question: is the sky blue?\nAnswer: yes. Answer: no. The cat sat on the mat.", 10);
        var bpe = new BpeTrainer(300, specialTokens: ["<s>", "</s>"]).Train(texts);
        HfTokenizerWriter.WriteByteLevelBpe(_folder, bpe, bosToken: "<s>", eosToken: "</s>", addBosToken: true);
        var tokenizer = HfTokenizer.Load(_folder);
        var model = TinyModels.Random(TinyModels.Config(layers: 2) with { VocabSize = tokenizer.VocabSize }, seed: 3);
        _lm = new TorchCausalLM(model, tokenizer);
    }

    public void Dispose()
    {
        _lm.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public void Score_WithModelTokenizer_EqualsScoringItsLmEvalEncoding()
    {
        var scorer = new TorchLoglikelihoodScorer(_lm);
        var encoder = RequestEncoder.FromTokenizer(_lm.Tokenizer!);
        LoglikelihoodRequest[] requests = [new("Question: is the sky blue?\nAnswer:", " yes"), new("Question: is the sky blue?\nAnswer: ", "no")];
        var scored = scorer.Score(requests);
        var expected = scorer.ScoreTokens(requests.Select(encoder.Encode).ToArray());
        scored.Should().Equal(expected);
        // The trailing space of the second context moved onto "no": both score the same " no" tokens after "Answer:".
        encoder.Encode(requests[1]).Context.Should().Equal(encoder.Encode(requests[0]).Context);
        scorer.MaxLength.Should().Be(_lm.Config.MaxPositionEmbeddings);
    }

    [Fact]
    public void Measure_TextPrompt_TokenizesAndTimes()
    {
        var stats = ModelStatisticsMeter.Measure(_lm, "The cat sat", new DecodeBenchmarkOptions { NewTokens = 3, WarmupRuns = 1, MeasuredRuns = 2 });
        stats.ParameterCount.Should().Be(_lm.ParameterCount);
        stats.Decoding!.MeasuredRuns.Should().HaveCount(2).And.AllSatisfy(r => r.Tokens.Should().Be(3));
        stats.Decoding.WarmupRuns.Should().HaveCount(1);
        stats.TimePerOutputTokenMs.Should().BePositive();
    }
}
