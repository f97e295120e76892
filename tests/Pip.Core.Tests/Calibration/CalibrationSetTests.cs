using Microsoft.Extensions.Options;

namespace Pip.Tests.Calibration;

public class CalibrationSetTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static string Paragraph(int i, int words) =>
        string.Join(' ', Enumerable.Range(0, words).Select(w => $"p{i}w{w}"));

    private string Corpus(int paragraphs, int words = 40)
    {
        // WikiText-like: a heading, then paragraphs separated by blank lines, some short ones in between.
        var lines = new List<string> { " = Title = ", "" };
        for (int i = 0; i < paragraphs; i++)
        {
            lines.Add(Paragraph(i, words));
            lines.Add("");
            lines.Add("short line");
            lines.Add("");
        }

        return _folder.File("corpus.txt", string.Join('\n', lines));
    }

    [Fact]
    public void Load_EnoughParagraphs_GivesSampleCountLongEnoughSamplesInFileOrder()
    {
        string path = Corpus(30);

        CalibrationSet set = CalibrationSet.Load(path, new CalibrationOptions { SampleCount = 8, MinWords = 32 });

        set.Samples.Should().HaveCount(8);
        set.Samples.Select(s => s.Index).Should().Equal(Enumerable.Range(0, 8));
        set.Samples.Should().OnlyContain(s => s.Text.Split(' ', StringSplitOptions.None).Length == 40);
        set.Samples.Select(s => int.Parse(s.Text[1..s.Text.IndexOf('w')])).Should().BeInAscendingOrder().And.OnlyHaveUniqueItems();
        set.SourcePath.Should().Be(path);
    }

    [Fact]
    public void Load_SameSeed_SameSamples_OtherSeed_OtherSamples()
    {
        string path = Corpus(40);

        CalibrationSet a = CalibrationSet.Load(path, new CalibrationOptions { Seed = 1 });
        CalibrationSet b = CalibrationSet.Load(path, new CalibrationOptions { Seed = 1 });
        CalibrationSet c = CalibrationSet.Load(path, new CalibrationOptions { Seed = 2 });

        b.Samples.Should().Equal(a.Samples);
        c.Samples.Select(s => s.Text).Should().NotEqual(a.Samples.Select(s => s.Text));
    }

    [Fact]
    public void Load_LongParagraph_CutAtWordBoundaryWithinBudget()
    {
        string path = Corpus(10, words: 300);

        CalibrationSet set = CalibrationSet.Load(path, new CalibrationOptions { SampleCount = 3, MaxCharacters = 100 });

        string original = File.ReadAllText(path);
        foreach (CalibrationSample sample in set.Samples)
        {
            sample.Text.Length.Should().BeLessThanOrEqualTo(100).And.BeGreaterThan(90);
            int at = original.IndexOf(sample.Text, StringComparison.Ordinal);
            at.Should().BeGreaterThanOrEqualTo(0);
            original[at + sample.Text.Length].Should().Be(' ');
        }
    }

    [Fact]
    public void Load_MaxWords_CutsToThatManyWords()
    {
        string path = Corpus(10, words: 300);

        CalibrationSet set = CalibrationSet.Load(path, new CalibrationOptions { SampleCount = 2, MaxWords = 50, MaxCharacters = 100_000 });

        set.Samples.Should().OnlyContain(s => s.Text.Split(' ').Length == 50);
    }

    [Fact]
    public void Load_WrappedParagraphs_JoinsLinesWithSpaces_LineUnitKeepsLines()
    {
        string text = string.Join('\n', "alpha beta gamma", "delta epsilon", "", "zeta eta theta", "iota kappa");
        string path = _folder.File("wrapped.txt", text);

        CalibrationSet paragraphs = CalibrationSet.Load(path, new CalibrationOptions { SampleCount = 2, MinWords = 4 });
        CalibrationSet lines = CalibrationSet.Load(path, new CalibrationOptions { SampleCount = 4, MinWords = 2, Unit = CalibrationUnit.Line });

        paragraphs.Samples.Select(s => s.Text).Should().Equal("alpha beta gamma delta epsilon", "zeta eta theta iota kappa");
        lines.Samples.Select(s => s.Text).Should().Equal("alpha beta gamma", "delta epsilon", "zeta eta theta", "iota kappa");
    }

    [Fact]
    public void Load_MissingFile_ThrowsNamingIt()
    {
        string path = Path.Combine(_folder.Path, "missing.txt");

        Action act = () => CalibrationSet.Load(path);

        act.Should().Throw<FileNotFoundException>().WithMessage($"*{path}*");
    }

    [Fact]
    public void Load_EmptyFile_ThrowsNamingIt()
    {
        string path = _folder.File("empty.txt", "\n  \n");

        Action act = () => CalibrationSet.Load(path);

        act.Should().Throw<InvalidDataException>().WithMessage($"*{path}*empty*");
    }

    [Fact]
    public void Load_TooFewUsableParagraphs_ThrowsNamingFileAndCounts()
    {
        string path = Corpus(3);

        Action act = () => CalibrationSet.Load(path, new CalibrationOptions { SampleCount = 8 });

        act.Should().Throw<InvalidDataException>().WithMessage($"*{path}*3 paragraph(s) of at least 32 words*8 samples*");
    }

    [Fact]
    public void Load_InvalidOptions_ThrowsListingEveryProblem()
    {
        string path = Corpus(3);

        Action act = () => CalibrationSet.Load(path, new CalibrationOptions { SampleCount = 0, MinWords = 0 });

        act.Should().Throw<OptionsValidationException>().Which.Failures.Should().HaveCount(2);
    }

    [Fact]
    public void Load_OptionsWithoutFile_Throws()
    {
        Action act = () => CalibrationSet.Load(new CalibrationOptions());

        act.Should().Throw<ArgumentException>().WithMessage("*FilePath*");
    }

    [Fact]
    public void FromTexts_Texts_IndexesInOrder()
    {
        CalibrationSet set = CalibrationSet.FromTexts(["a", "b"]);

        set.Samples.Should().Equal(new CalibrationSample(0, "a"), new CalibrationSample(1, "b"));
        set.SourcePath.Should().BeNull();
    }
}
