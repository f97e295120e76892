using System.Text.RegularExpressions;
using Pip.Tokenization;

namespace Pip.Core.Tests.Tokenization;

public sealed class HfPreTokenizerTests
{
    // The example of Hugging Face's SplitDelimiterBehavior documentation.
    [Theory]
    [InlineData(SplitBehavior.Removed, new[] { "the", "final", "countdown" })]
    [InlineData(SplitBehavior.Isolated, new[] { "the", "-", "final", "-", "-", "countdown" })]
    [InlineData(SplitBehavior.MergedWithPrevious, new[] { "the-", "final-", "-", "countdown" })]
    [InlineData(SplitBehavior.MergedWithNext, new[] { "the", "-final", "-", "-countdown" })]
    [InlineData(SplitBehavior.Contiguous, new[] { "the", "-", "final", "--", "countdown" })]
    internal void SplitByPattern_EachBehavior_MatchesHuggingFaceExample(SplitBehavior behavior, string[] expected)
    {
        var output = new List<PreToken>();
        HfPreTokenizer.SplitByPattern(new PreToken("the-final--countdown", true), new Regex("-"), behavior, invert: false, output);
        output.Select(p => p.Text).Should().Equal(expected);
        output.Select(p => p.AtStart).Should().Equal(expected.Select((_, i) => i == 0));
    }

    [Fact]
    public void SplitByPattern_Inverted_TreatsGapsAsMatches()
    {
        var output = new List<PreToken>();
        HfPreTokenizer.SplitByPattern(new PreToken("ab12cd", false), new Regex(@"\d+"), SplitBehavior.Removed, invert: true, output);
        output.Select(p => p.Text).Should().Equal("12");
    }
}
